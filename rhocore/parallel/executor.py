"""Where ``rhocore generate`` computes its structures: the ``executor`` config section.

``kind`` picks one of

- ``local``: a ``dask.distributed.LocalCluster`` of worker processes on this machine
  (the default);
- ``address``: an existing Dask scheduler, e.g. one started by hand on a cluster;
- ``slurm`` / ``pbs``: batch jobs of Dask workers through ``dask-jobqueue``;
- ``serial``: this process, one structure after another, no Dask (debuggers, tiny runs).

Every Dask worker computes one structure at a time and gives its cores to the QC code's
BLAS/OpenMP threads. A worker that dies (out of memory, node lost, job killed) loses
only its current structure, which the scheduler runs again on another worker.
Dask is imported only when a cluster is started, so reading a config stays fast.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from rhocore.errors import RhocoreError

if TYPE_CHECKING:
    from dask_jobqueue.core import JobQueueCluster
    from distributed import Client

log = logging.getLogger(__name__)

#: Thread-count variables of the common BLAS/OpenMP libraries, set in every worker.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class ExecutorError(RhocoreError, RuntimeError):
    """A Dask cluster that cannot be reached or started, with what to do about it."""


def _byte_size(text: str) -> str:
    """``text`` if Dask reads it as a memory size ('4GB', '500MiB') or 'auto'."""
    from dask.utils import parse_bytes

    if text == "auto":
        return text
    try:
        parse_bytes(text)
    except (ValueError, TypeError):
        raise ValueError("not a memory size; write e.g. '4GB' or '500MiB'") from None
    return text


def _walltime(value: object) -> str:
    """``value`` if it is a batch-system walltime ([D-]HH:MM:SS, HH:MM or minutes)."""
    if isinstance(value, int):  # YAML reads an unquoted 4:00:00 as 14400
        raise ValueError("write the walltime in quotes, e.g. '04:00:00'")
    if not isinstance(value, str) or not re.fullmatch(r"(\d+-)?\d+(:\d\d){0,2}", value):
        raise ValueError("not a walltime; write e.g. '02:00:00' (HH:MM:SS) or '1-00:00:00'")
    return value


ByteSize = Annotated[str, AfterValidator(_byte_size)]
Walltime = Annotated[str, BeforeValidator(_walltime)]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SerialExecutor(_Options):
    """Compute in this process, one structure after another, without Dask."""

    kind: Literal["serial"] = "serial"


class _ClusterOptions(_Options):
    retries_on_worker_loss: int = Field(
        default=3,
        ge=0,
        description="How often a structure is run again on another worker after the worker "
        "computing it died (out of memory, node lost); then it is recorded as failed.",
    )
    dashboard_address: str | None = Field(
        default=None,
        description="Where the Dask dashboard listens, e.g. ':8787' (needs bokeh); none "
        "by default.",
    )


class LocalExecutor(_ClusterOptions):
    """A ``dask.distributed.LocalCluster`` of worker processes on this machine."""

    kind: Literal["local"] = "local"
    workers: int | None = Field(
        default=None,
        ge=1,
        description="Worker processes; default: this machine's usable cores divided by "
        "cores_per_worker. Never more than the structures left to compute.",
    )
    cores_per_worker: int | None = Field(
        default=None,
        ge=1,
        description="BLAS/OpenMP threads of each worker's QC code (OMP_NUM_THREADS, "
        "MKL_NUM_THREADS, OPENBLAS_NUM_THREADS, unless the environment sets them); "
        "default: the usable cores shared evenly by the workers started, so that a "
        "lone structure gets them all.",
    )
    memory_per_worker: ByteSize = Field(
        default="auto",
        description="Memory limit of each worker, e.g. '4GB'; 'auto' shares this machine's "
        "memory evenly. A worker above it is restarted and its structure run again.",
    )

    def layout(self, structures: int) -> tuple[int, int]:
        """Workers to start for ``structures`` structures and the cores of each.

        Workers: ``workers``, or usable cores / ``cores_per_worker``, never more than the
        structures. Cores: ``cores_per_worker``, or the usable cores shared evenly.
        """
        cores = usable_cores()
        workers = self.workers or max(1, cores // (self.cores_per_worker or 1))
        workers = max(1, min(workers, structures))
        return workers, self.cores_per_worker or max(1, cores // workers)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class AddressExecutor(_Options):
    """An existing Dask scheduler; its workers must have rhocore and the plugins installed.

    A structure whose worker dies is run again as often as that scheduler's
    ``distributed.scheduler.allowed-failures`` setting allows (3 by default).
    """

    kind: Literal["address"] = "address"
    address: str = Field(
        description="The scheduler's address, e.g. 'tcp://10.0.0.5:8786' (printed by "
        "`dask scheduler`)."
    )
    timeout: float = Field(default=10.0, gt=0, description="Seconds to wait for it to answer.")


class JobqueueExecutor(_ClusterOptions):
    """Batch jobs of Dask workers on a SLURM or PBS cluster, through ``dask-jobqueue``.

    The scheduler runs in the ``rhocore generate`` process (e.g. on the login node);
    ``jobs`` batch jobs are kept running, each with ``workers_per_job`` workers that
    share its ``cores`` and ``memory``. A job that ends (walltime) is replaced while
    structures remain.
    """

    kind: Literal["slurm", "pbs"]
    queue: str | None = Field(default=None, description="Partition (SLURM) or queue (PBS).")
    account: str | None = Field(default=None, description="Account charged for the jobs.")
    jobs: int = Field(default=1, ge=1, description="Batch jobs kept running.")
    cores: int = Field(default=1, ge=1, description="CPU cores of each job.")
    memory: ByteSize = Field(description="Memory of each job, e.g. '16GB'.")
    walltime: Walltime = Field(default="01:00:00", description="Walltime of each job.")
    workers_per_job: int = Field(
        default=1,
        ge=1,
        description="Worker processes per job; each gives cores / workers_per_job cores to "
        "its QC code's threads.",
    )
    prologue: list[str] = Field(
        default_factory=list,
        description="Shell lines run before the workers start, e.g. 'module load "
        "openblas', 'source /path/to/.venv/bin/activate'.",
    )
    extra_directives: list[str] = Field(
        default_factory=list,
        description="Further batch directives, e.g. '--constraint=amd' (SLURM) or "
        "'-l place=scatter' (PBS), written after #SBATCH / #PBS.",
    )
    interface: str | None = Field(
        default=None,
        description="Network interface the workers and the scheduler talk over, e.g. "
        "'ib0'; default: the host's main address.",
    )
    local_directory: str | None = Field(
        default=None, description="Scratch directory of the workers on the compute nodes."
    )
    log_directory: str | None = Field(
        default=None, description="Directory of the jobs' output and error files."
    )

    @model_validator(mode="after")
    def _cores_split_evenly(self) -> JobqueueExecutor:
        if self.cores % self.workers_per_job:
            raise ValueError(
                f"cores ({self.cores}) must be a multiple of workers_per_job "
                f"({self.workers_per_job})"
            )
        return self

    @property
    def cores_per_worker(self) -> int:
        """BLAS/OpenMP threads of each worker's QC code."""
        return self.cores // self.workers_per_job


ExecutorOptions = SerialExecutor | LocalExecutor | AddressExecutor | JobqueueExecutor

#: The model of each ``executor.kind``.
EXECUTOR_KINDS: dict[str, type[BaseModel]] = {
    "local": LocalExecutor,
    "address": AddressExecutor,
    "slurm": JobqueueExecutor,
    "pbs": JobqueueExecutor,
    "serial": SerialExecutor,
}


def describe(options: ExecutorOptions, structures: int) -> str:
    """One line saying where ``structures`` structures are computed, for the log."""
    if isinstance(options, LocalExecutor):
        return f"a local Dask cluster of {_workers(*options.layout(structures))}"
    if isinstance(options, AddressExecutor):
        return f"the Dask scheduler at {options.address}"
    if isinstance(options, JobqueueExecutor):
        workers = _workers(options.workers_per_job, options.cores_per_worker)
        return f"{options.jobs} {options.kind.upper()} job(s) of {workers}"
    return "this process, one structure after another"


def _workers(count: int, cores: int) -> str:
    return f"{count} worker(s) of {cores} core(s) each"


def _quiet_dask() -> None:
    """Dask's own log at warning level and above, unless rhocore logs debug messages."""
    if not log.isEnabledFor(logging.DEBUG):
        logging.getLogger("distributed").setLevel(logging.WARNING)


@contextmanager
def dask_client(options: ExecutorOptions, structures: int) -> Iterator[Client]:
    """A Dask client on the cluster ``options`` describe, closed (with it) on exit.

    ``structures`` bounds the local worker count: no worker is started without work.
    """
    import dask
    from distributed import Client

    if isinstance(options, SerialExecutor):
        raise ValueError("the serial executor computes in this process, without Dask")
    _quiet_dask()
    if isinstance(options, AddressExecutor):
        with _connect(options) as client:
            yield client
        return
    settings: dict[str, Any] = {
        "distributed.scheduler.allowed-failures": options.retries_on_worker_loss,
        # hand a worker only the structure it computes, so that a dying worker takes no
        # queued structure with it and counts against no other structure's retries
        "distributed.scheduler.worker-saturation": 1.0,
    }
    if isinstance(options, LocalExecutor):
        workers, cores = options.layout(structures)
    else:
        workers, cores = options.workers_per_job, options.cores_per_worker
    threads = {name: str(cores) for name in THREAD_VARIABLES}
    settings["distributed.nanny.pre-spawn-environ"] = threads
    with _restored_environment(THREAD_VARIABLES), dask.config.set(settings):
        if isinstance(options, LocalExecutor):
            cluster = _local_cluster(options, workers)
        else:
            cluster = jobqueue_cluster(options)
            cluster.adapt(minimum_jobs=options.jobs, maximum_jobs=options.jobs)
        with cluster, Client(cluster) as client:
            yield client


def _local_cluster(options: LocalExecutor, workers: int) -> Any:
    from distributed import LocalCluster

    with _start_errors("local"):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=options.memory_per_worker,
            dashboard_address=options.dashboard_address,
            scheduler_kwargs=_http_server(options.dashboard_address),
            silence_logs=logging.WARNING,
        )


def _http_server(dashboard_address: str | None) -> dict[str, Any]:
    """Scheduler options: the dashboard where asked, else its small HTTP server on any
    free port (never a busy 8787, which would warn)."""
    return {
        "dashboard": dashboard_address is not None,
        "dashboard_address": dashboard_address or ":0",
    }


def jobqueue_cluster(options: JobqueueExecutor) -> JobQueueCluster:
    """The ``dask-jobqueue`` cluster of ``options``, with no job submitted yet.

    Each worker process runs one structure at a time (one Dask thread) and exports
    the BLAS/OpenMP thread variables for its share of the job's cores.
    """
    from dask.utils import parse_bytes
    from dask_jobqueue import PBSCluster, SLURMCluster
    from dask_jobqueue.pbs import pbs_format_bytes_ceil

    exports = [f"export {name}={options.cores_per_worker}" for name in THREAD_VARIABLES]
    common: dict[str, Any] = {
        "queue": options.queue,
        "account": options.account,
        "cores": options.workers_per_job,
        "processes": options.workers_per_job,
        "memory": options.memory,
        "walltime": options.walltime,
        "job_script_prologue": exports + options.prologue,
        "job_extra_directives": options.extra_directives,
        "interface": options.interface,
        "local_directory": options.local_directory,
        "log_directory": options.log_directory,
        "job_name": "rhocore",
        "silence_logs": "warning",
        "scheduler_options": _http_server(options.dashboard_address),
    }
    with _start_errors(options.kind.upper()):
        if options.kind == "slurm":
            return SLURMCluster(job_cpu=options.cores, **common)
        memory = pbs_format_bytes_ceil(parse_bytes(options.memory))
        return PBSCluster(resource_spec=f"select=1:ncpus={options.cores}:mem={memory}", **common)


@contextmanager
def _start_errors(what: str) -> Iterator[None]:
    """A cluster that fails to start (bad interface, busy port) as one ExecutorError line."""
    try:
        yield
    except (RuntimeError, ValueError, OSError) as error:
        reason = " ".join(str(error).split())
        raise ExecutorError(
            f"executor: the {what} Dask cluster did not start: {reason}; correct the "
            "executor section (e.g. executor.interface) and run the command again"
        ) from None


@contextmanager
def _connect(options: AddressExecutor) -> Iterator[Client]:
    from distributed import Client

    advice = (
        "start one with `dask scheduler` and its workers with `dask worker ADDRESS`, or "
        "correct the address"
    )
    try:
        client = Client(options.address, timeout=options.timeout)
    except (OSError, TimeoutError) as error:
        raise ExecutorError(
            f"executor.address: no Dask scheduler answered at '{options.address}' within "
            f"{options.timeout:g} s ({' '.join(str(error).split())}); {advice}"
        ) from None
    except Exception as error:  # e.g. a web server there, whose reply is no handshake
        raise ExecutorError(
            f"executor.address: what answers at '{options.address}' is not a Dask "
            f"scheduler ({type(error).__name__} in the handshake); {advice}"
        ) from None
    with client:
        yield client


@contextmanager
def _restored_environment(names: tuple[str, ...]) -> Iterator[None]:
    """Undo what Dask's nanny writes into this process's environment for its workers."""
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
