"""``rhocore generate``: structures -> SCF -> target weights -> RI fit -> dataset.h5.

Structures are computed where the config's ``executor`` says (a local Dask cluster by
default, one task per structure); this process is the dataset's single writer and
stores every finished structure at once, crash-safely, so a run that is killed resumes
where it stopped: rerunning the same command computes only the structures that are
missing.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import ase

import rhocore
from rhocore.data.dataset import DatasetEntry, DatasetMetadata, DatasetWriter
from rhocore.parallel.executor import ExecutorOptions, SerialExecutor, dask_client, describe
from rhocore.parallel.progress import progress_bar
from rhocore.qc.backend import QCBackend
from rhocore.qc.target import Target
from rhocore.workflows.config import ResolvedConfig

log = logging.getLogger(__name__)


@dataclass
class GenerateSummary:
    """What a generate run did: indices computed now, skipped as done, and failures."""

    computed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)

    def table(self) -> str:
        """A human-readable summary, one line per failed structure."""
        lines = [
            f"computed {len(self.computed)}, already in the dataset {len(self.skipped)}, "
            f"failed {len(self.failed)}"
        ]
        lines += [f"  structure {index}: {reason}" for index, reason in sorted(self.failed.items())]
        return "\n".join(lines)


def compute_entry(index: int, atoms: ase.Atoms, backend: QCBackend, target: Target) -> DatasetEntry:
    """Run one structure through SCF, target and RI fit; failures become failed entries."""
    try:
        scf = backend.run_scf(atoms)
        if not scf.converged:
            return DatasetEntry.failed(
                index, atoms, "SCF did not converge (raise max_cycle or conv_tol)"
            )
        weights = target.weights(scf.orbitals)
        n_electrons = target.expected_integral(scf.orbitals) if target.is_total_density else None
        fit = backend.fit(scf, weights, n_electrons=n_electrons)
    except (ValueError, RuntimeError, ArithmeticError, KeyError) as error:
        return DatasetEntry.failed(index, atoms, f"{type(error).__name__}: {error}")
    return DatasetEntry(
        index=index,
        atoms=atoms,
        fit=fit,
        orbitals=scf.orbitals,
        weights=weights,
        total_energy=scf.total_energy,
        scf_converged=scf.converged,
        status="done",
    )


@dataclass(frozen=True)
class WorkerPlugins:
    """The backend and target a worker builds, as classes and options JSON.

    It pickles by reference to the plugin classes, so a worker process needs only the
    plugins installed (or importable), not the registry that resolved them.
    """

    backend_cls: type[QCBackend]
    backend_options: str
    target_cls: type[Target]
    target_options: str

    @classmethod
    def of(cls, config: ResolvedConfig) -> WorkerPlugins:
        """The plugins of ``config``."""
        assert config.backend_options is not None and config.target_options is not None
        return cls(
            config.backend_cls,
            config.backend_options.model_dump_json(),
            config.target_cls,
            config.target_options.model_dump_json(),
        )


@functools.lru_cache(maxsize=1)
def _built(plugins: WorkerPlugins) -> tuple[QCBackend, Target]:
    """The backend and target of ``plugins``, built once per worker process."""
    backend_cls, target_cls = plugins.backend_cls, plugins.target_cls
    return (
        backend_cls(backend_cls.Options.model_validate_json(plugins.backend_options)),
        target_cls(target_cls.Options.model_validate_json(plugins.target_options)),
    )


def compute_on_worker(plugins: WorkerPlugins, index: int, atoms: ase.Atoms) -> DatasetEntry:
    """One Dask task: structure ``index`` through :func:`compute_entry`."""
    backend, target = _built(plugins)
    return compute_entry(index, atoms, backend, target)


def dataset_metadata(
    config: ResolvedConfig, backend: QCBackend, atoms: ase.Atoms
) -> DatasetMetadata:
    """Metadata that lets training and evaluation run without the generating config."""
    assert config.backend_options is not None and config.target_options is not None
    return DatasetMetadata(
        backend_name=backend.name,
        backend_version=backend.version,
        backend_options=config.backend_options.model_dump(mode="json"),
        target_name=config.target_cls.name,
        target_options=config.target_options.model_dump(mode="json"),
        layout=backend.basis_layout(atoms),
        metric_kind=backend.metric_kind,
        rhocore_version=rhocore.__version__,
    )


def generate(config: ResolvedConfig, output: Path, *, progress: bool = True) -> GenerateSummary:
    """Compute every structure of ``config`` that ``output`` does not hold yet."""
    frames = config.read_structures()
    backend = config.make_backend()
    target = config.make_target()
    backend.check_setup(frames)
    all_species = ase.Atoms(numbers=sorted({int(z) for atoms in frames for z in atoms.numbers}))
    metadata = dataset_metadata(config, backend, all_species)
    summary = GenerateSummary()
    with DatasetWriter(Path(output), metadata) as writer:
        finished = writer.finished_indices()
        todo = [index for index in range(len(frames)) if index not in finished]
        summary.skipped = sorted(finished)
        if summary.skipped:
            log.info(
                "%s holds %d finished structures; computing %d more",
                output,
                len(summary.skipped),
                len(todo),
            )
        if not todo:
            return summary
        executor = config.executor_options
        log.info("computing %d structures on %s", len(todo), describe(executor, len(todo)))
        if isinstance(executor, SerialExecutor):
            entries = (compute_entry(index, frames[index], backend, target) for index in todo)
        else:
            entries = _dask_entries(executor, WorkerPlugins.of(config), frames, todo)
        bar = progress_bar(
            entries, desc="generate", total=len(todo), unit="structure", disable=not progress
        )
        with closing(entries):  # an error here stops the cluster at once
            for entry in bar:
                writer.write(entry)
                if entry.status == "done":
                    summary.computed.append(entry.index)
                else:
                    summary.failed[entry.index] = entry.reason
                    log.warning("structure %d failed: %s", entry.index, entry.reason)
    summary.computed.sort()
    return summary


def _dask_entries(
    executor: ExecutorOptions, plugins: WorkerPlugins, frames: list[ase.Atoms], todo: list[int]
) -> Iterator[DatasetEntry]:
    """The entries of ``todo``, one Dask task each, in the order they finish.

    A structure whose workers kept dying (the scheduler gave up on it) becomes a failed
    entry; any other exception of a task ends the run, as it would in this process.
    """
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    with dask_client(executor, len(todo)) as client:
        run = uuid.uuid4().hex[:8]
        futures = {
            client.submit(
                compute_on_worker, plugins, index, frames[index], key=f"rhocore-{run}-{index}"
            ): index
            for index in todo
        }
        for future in as_completed(futures):
            index = futures.pop(future)
            try:
                entry = future.result()
            except KilledWorker:
                entry = DatasetEntry.failed(
                    index,
                    frames[index],
                    "every Dask worker that computed it died (out of memory? raise "
                    "executor.memory_per_worker or memory, or see the worker logs)",
                )
            future.release()
            yield entry
