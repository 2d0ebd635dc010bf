"""Validated options of the ``aims`` backend: how to run FHI-aims and what to ask of its RI fit.

``command`` and ``species_dir`` default to the ``[aims]`` section of the user's ASE
configuration file (``command``, ``default_species_directory``), the same place ASE's
``AimsProfile`` reads, so a cluster already set up for ASE needs no rhocore-specific paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from rhocore.api import PluginOptions

SpeciesLevel = Literal["light", "intermediate", "tight", "really_tight"]
KeywordGeneration = Literal["auto", "legacy", "mainline"]


class AimsOptions(PluginOptions):
    """Options of the ``aims`` backend."""

    command: str | None = Field(
        None,
        description=(
            "Shell command that runs FHI-aims in the run folder, e.g. 'mpirun -n 4 aims.x' "
            "(stdout is captured to aims.out). None: the 'command' of the [aims] section of "
            "the ASE configuration file (~/.config/ase/config.ini or $ASE_CONFIG_PATH)."
        ),
    )
    species_dir: Path | None = Field(
        None,
        description=(
            "FHI-aims species_defaults folder: either a level folder holding "
            "'01_H_default' ... files, or its parent holding one folder per level. None: "
            "'default_species_directory' of the [aims] section of the ASE configuration."
        ),
    )
    species_level: SpeciesLevel = Field(
        "tight",
        description=(
            "Species default level, used when species_dir holds one folder per level "
            "(light, intermediate, tight, really_tight)."
        ),
    )
    xc: str = Field("pbe", description="Exchange-correlation functional, FHI-aims' 'xc' keyword.")
    spin: Literal["none", "collinear"] = Field(
        "none", description="FHI-aims 'spin' keyword: 'none' or 'collinear'."
    )
    default_initial_moment: float | None = Field(
        None, description="Initial moment per atom (Bohr magnetons) for spin 'collinear'."
    )
    charge: float = Field(0.0, description="Net charge of the structure, elementary charges.")
    k_grid: tuple[int, int, int] | None = Field(
        None, description="Monkhorst-Pack k-grid for periodic structures; None for molecules."
    )
    relativistic: str = Field(
        "atomic_zora scalar",
        description="FHI-aims 'relativistic' keyword, e.g. 'none' or 'atomic_zora scalar'.",
    )
    keywords: KeywordGeneration = Field(
        "auto",
        description=(
            "Generation of the RI-output keywords: 'legacy' (ri_fit_* keywords of the "
            "FHI-aims 2023 builds), 'mainline' (ri_full_output, ri_density_restart, "
            "ri_skip_scf, ri_ovlp_write_triu of FHI-aims 240925 and later) or 'auto' "
            "(decided from the version the SCF step prints)."
        ),
    )
    prodbas_acc: float = Field(
        1e-5,
        gt=0,
        description="FHI-aims 'default_prodbas_acc': threshold that prunes the RI basis.",
    )
    max_l_prodbas: int | None = Field(
        None, ge=0, description="FHI-aims 'default_max_l_prodbas'; None keeps FHI-aims' default."
    )
    ovlp_cutoff_radius: float = Field(
        2.0,
        gt=0,
        description=(
            "Legacy keywords only: 'ri_fit_ovlp_cutoff_radius' (angstrom) for the RI overlap."
        ),
    )
    extra_control: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Further control.in keywords for both steps, {keyword: value}; true/false "
            "become .true./.false., lists become one line per item."
        ),
    )
    run_directory: Path = Field(
        Path("aims_runs"),
        description=(
            "Folder under which each structure gets its own run folder (scf/ and ri/ "
            "steps). A finished step found there is reused, so a killed run loses nothing."
        ),
    )
    imported_from: str | None = Field(
        None,
        description=(
            "Set by `rhocore aims import`: the kind of folders a dataset was imported from "
            "(no FHI-aims run made it); recorded only, it changes no run."
        ),
    )
    timeout: float | None = Field(
        None, gt=0, description="Wall-clock limit of one FHI-aims step, seconds; None: none."
    )
