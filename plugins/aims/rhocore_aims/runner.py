"""Run one FHI-aims step in its own folder through ASE's FHI-aims profile.

ASE writes ``geometry.in`` and ``control.in`` (species blocks from the species defaults
folder) and its ``AimsProfile`` runs the command with stdout captured to ``aims.out``.
A step whose folder already holds a finished ``aims.out`` is not run again, which is what
makes a killed dataset run resume without losing finished FHI-aims work.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ase
import numpy as np
from ase.calculators.aims import AimsProfile, AimsTemplate

from rhocore.api import BackendSetupError
from rhocore_aims.errors import AimsFileError
from rhocore_aims.options import AimsOptions
from rhocore_aims.parsers.aims_out import AimsOutput, check_finished, parse_aims_out

#: Launchers that come before the FHI-aims binary in a command line.
LAUNCHERS = {"mpirun", "mpiexec", "srun", "aprun", "ibrun", "env", "nice", "time"}


class AimsSetupError(BackendSetupError):
    """FHI-aims cannot be run as configured (no command, missing binary or species)."""


@dataclass(frozen=True)
class AimsSetup:
    """The resolved command and species folder, and where they came from."""

    command: str
    species_dir: Path
    source: str


def resolve_setup(options: AimsOptions) -> AimsSetup:
    """Command and species folder from the options or, where unset, ASE's [aims] config."""
    section, config_file = _ase_aims_section()
    command = options.command or section.get("command")
    species = options.species_dir or section.get("default_species_directory")
    source = "backend options" if options.command else f"[aims] section of {config_file}"
    if not command:
        raise AimsSetupError(
            "no FHI-aims command: set the backend option 'command' (e.g. 'mpirun -n 4 "
            f"aims.x') or 'command' in the [aims] section of {config_file}"
        )
    _check_binary(command, source)
    if not species:
        raise AimsSetupError(
            "no FHI-aims species defaults folder: set the backend option 'species_dir' or "
            f"'default_species_directory' in the [aims] section of {config_file}"
        )
    return AimsSetup(command, _species_folder(Path(species), options.species_level), source)


def check_species(species_dir: Path, atoms: ase.Atoms) -> None:
    """Every element of ``atoms`` has its '<Z>_<symbol>_default' file in ``species_dir``."""
    for number, symbol in sorted(
        set(zip(atoms.numbers, atoms.get_chemical_symbols(), strict=True))
    ):
        path = species_dir / f"{number:02d}_{symbol}_default"
        if not path.is_file():
            raise AimsSetupError(
                f"species defaults folder {species_dir} has no file {path.name} for "
                f"element {symbol}; point species_dir at a folder of FHI-aims species defaults"
            )


def structure_key(atoms: ase.Atoms, options: AimsOptions) -> str:
    """A short hash of structure and physics options: the name of its run folder."""
    payload = {
        "numbers": atoms.numbers.tolist(),
        "positions": np.round(atoms.positions, 8).tolist(),
        "cell": np.round(atoms.cell.array, 8).tolist(),
        "pbc": atoms.pbc.tolist(),
        "options": options.model_dump(mode="json", exclude={"command", "run_directory"}),
    }
    digest = hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
    return f"{atoms.get_chemical_formula()}-{digest}"


def run_step(
    folder: Path,
    atoms: ase.Atoms,
    parameters: dict[str, Any],
    setup: AimsSetup,
    extra_files: dict[str, Path | str] | None = None,
    *,
    require_converged: bool = True,
) -> AimsOutput:
    """Run FHI-aims in ``folder`` unless a finished run is there; return its parsed aims.out.

    ``extra_files`` maps names to copy into the folder (a path) or write (text) before
    the run. A crashed, killed or (with ``require_converged``) non-converged run raises
    :class:`AimsFileError`. RI steps that skip the SCF on purpose pass
    ``require_converged=False``.
    """
    output_path = folder / "aims.out"
    previous = _finished_output(output_path, require_converged)
    if previous is not None:
        return previous
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (extra_files or {}).items():
        if isinstance(content, Path):
            shutil.copyfile(content, folder / name)
        else:
            (folder / name).write_text(content)
    profile = AimsProfile(setup.command, default_species_directory=str(setup.species_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ASE's notice that aims IO moves
        AimsTemplate().write_input(profile, folder, atoms, dict(parameters), [])
    try:
        profile.run(folder, None, "aims.out", errorfile="aims.err")
    except subprocess.CalledProcessError as error:
        raise AimsFileError(
            output_path, f"FHI-aims exited with status {error.returncode}; {_tail(folder)}"
        ) from None
    except OSError as error:
        raise AimsSetupError(f"could not start FHI-aims with '{setup.command}': {error}") from None
    result = parse_aims_out(output_path)
    check_finished(result, output_path, require_converged=require_converged)
    return result


def _finished_output(path: Path, require_converged: bool) -> AimsOutput | None:
    """The parsed output of a finished earlier run in this folder, else None (run again)."""
    if not path.is_file():
        return None
    try:
        previous = parse_aims_out(path)
        check_finished(previous, path, require_converged=require_converged)
    except AimsFileError:  # killed before or while writing: the step runs again
        return None
    return previous


def _ase_aims_section() -> tuple[dict[str, str], str]:
    from ase.config import Config

    cfg = Config.read()  # read anew: $ASE_CONFIG_PATH may have changed since import
    paths = [str(path) for path in cfg.paths] or ["~/.config/ase/config.ini ($ASE_CONFIG_PATH)"]
    where = " or ".join(paths)
    if cfg.parser.has_section("aims"):
        return dict(cfg.parser["aims"]), where
    return {}, where


def _check_binary(command: str, source: str) -> None:
    words = shlex.split(command)
    candidates = [
        word
        for word in words
        if not word.startswith("-") and "=" not in word and not word.isdigit()  # -n 4
    ]
    binary = next((word for word in candidates if Path(word).name not in LAUNCHERS), None)
    if binary is None:
        raise AimsSetupError(f"the FHI-aims command '{command}' ({source}) names no binary")
    if shutil.which(binary) is None and not Path(binary).is_file():
        raise AimsSetupError(
            f"FHI-aims binary '{binary}' of the command '{command}' ({source}) was not "
            "found; give its full path or load the module that provides it"
        )


def _species_folder(species_dir: Path, level: str) -> Path:
    species_dir = species_dir.expanduser()
    if not species_dir.is_dir():
        raise AimsSetupError(f"FHI-aims species defaults folder {species_dir} does not exist")
    by_level = species_dir / level
    return by_level if by_level.is_dir() else species_dir


def _tail(folder: Path) -> str:
    for name in ("aims.err", "aims.out"):
        path = folder / name
        if path.is_file():
            lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
            lines = [line for line in lines if line]
            if lines:
                return f"last line of {name}: '{lines[-1][:200]}'"
    return "it wrote no output"
