"""``rhocore generate``: structures -> SCF -> target weights -> RI fit -> dataset.h5.

Every finished structure is written to the dataset at once and crash-safely, so a run
that is killed resumes where it stopped: rerunning the same command computes only the
structures that are missing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import ase
from tqdm import tqdm

import rhocore
from rhocore.backend import QCBackend
from rhocore.config import ResolvedConfig
from rhocore.dataset import DatasetEntry, DatasetMetadata, DatasetWriter
from rhocore.target import Target

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
        metric_kind=getattr(config.backend_options, "metric", "overlap"),
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
        for index in tqdm(todo, desc="generate", unit="structure", disable=not progress):
            entry = compute_entry(index, frames[index], backend, target)
            writer.write(entry)
            if entry.status == "done":
                summary.computed.append(index)
            else:
                summary.failed[index] = entry.reason
                log.warning("structure %d failed: %s", index, entry.reason)
    return summary
