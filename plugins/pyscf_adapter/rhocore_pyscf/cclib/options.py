"""Validated options of the ``cclib`` backend: the RI fit of orbitals read from QC outputs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from rhocore.api import PluginOptions
from rhocore_pyscf.options import EVEN_TEMPERED, PySCFOptions


class CclibOptions(PluginOptions):
    """Options of the ``cclib`` backend: no SCF settings (the output holds the orbitals),
    only how their fields are fitted and checked."""

    aux_basis: str = Field(
        "def2-universal-jkfit",
        description=(
            "Auxiliary (RI) basis the fields are fitted on, a PySCF basis name covering "
            "every element of the outputs."
        ),
    )
    metric: Literal["coulomb", "overlap"] = Field(
        "coulomb",
        description=(
            "Metric of the RI fit: 'coulomb' (Coulomb interaction of the fit error; keeps "
            "the electron count to ~0.01 %) or 'overlap' (L2 norm of the fit error)."
        ),
    )
    constrain_charge: bool = Field(
        False,
        description=(
            "Impose the integral of a total-density fit exactly (a Lagrange multiplier on "
            "the s-function integrals) when the electron count is given to the fit."
        ),
    )
    orthonormality_tolerance: float = Field(
        1e-4,
        gt=0,
        description=(
            "Largest accepted max |C S C^T - I| of an output's MO coefficients C in PySCF's "
            "AO overlap S of its basis (dimensionless), and of its printed AO overlap vs "
            "PySCF's. Outputs above it are refused: their AO order was misread, or their "
            "coefficients are printed with few digits (GAMESS-UK: 3e-4)."
        ),
    )
    grid_level: int = Field(
        3, ge=0, le=9, description="PySCF DFT grid level (0-9) of the integration grids."
    )
    #: the same RI conditioning limit as the pyscf backend's
    condition_limit: float = PySCFOptions.model_fields["condition_limit"]

    @field_validator("aux_basis")
    @classmethod
    def _named_basis(cls, value: str) -> str:
        if value == EVEN_TEMPERED:
            raise ValueError(
                f"'{EVEN_TEMPERED}' needs the orbital basis, which only the output files "
                "know, while datasets evaluate fields from atoms alone; name a PySCF "
                "auxiliary basis such as 'def2-universal-jkfit'"
            )
        return value
