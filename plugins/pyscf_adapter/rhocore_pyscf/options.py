"""Validated options of the PySCF backend (Kohn-Sham settings and the RI fit)."""

from __future__ import annotations

from typing import Annotated

from ase.data import chemical_symbols
from pydantic import Field, field_validator, model_validator

from rhocore.api import MetricKind, PluginOptions

#: Value of ``aux_basis`` that asks for an even-tempered basis generated from the orbital basis.
EVEN_TEMPERED = "even-tempered"
#: Exponent ratio of the even-tempered basis when ``even_tempered_beta`` is not given.
DEFAULT_EVEN_TEMPERED_BETA = 2.0
#: Highest angular momentum ``even_tempered_max_l`` accepts (i functions).
MAX_AUX_L = 6
#: Options that act only under one setting, (setting, value) -> option names.
DEPENDENT_OPTIONS = {
    ("aux_basis", EVEN_TEMPERED): ("even_tempered_beta", "even_tempered_max_l"),
    ("metric", "relative"): ("relative_metric_floor", "relative_metric_power"),
    ("density_fit", True): ("density_fit_basis",),
}
#: GTH pseudopotential of periodic cells when ``pseudo`` is not given.
DEFAULT_PSEUDO = "gth-pbe"


class PySCFOptions(PluginOptions):
    """Options of the ``pyscf`` backend: Kohn-Sham DFT of a molecule or a periodic cell
    (``atoms.pbc`` set; GTH pseudopotentials) and its RI fit."""

    xc: str = Field(
        "pbe", description="Exchange-correlation functional, any name PySCF/libxc knows."
    )
    basis: str = Field("def2-svp", description="Orbital basis set, a PySCF basis name.")
    aux_basis: str = Field(
        "def2-universal-jkfit",
        description=(
            "Auxiliary (RI) basis the fields are fitted on: a PySCF basis name, or "
            f"'{EVEN_TEMPERED}' for even-tempered Gaussians generated from the orbital basis. "
            f"Periodic cells: use '{EVEN_TEMPERED}'; an all-electron fitting basis has core "
            "functions too tight for the cell's uniform grid, on which fields are evaluated."
        ),
    )
    even_tempered_beta: float | None = Field(
        None,
        gt=1.0,
        description=(
            "Ratio between successive exponents of the even-tempered auxiliary basis "
            f"(dimensionless, > 1). Only with aux_basis='{EVEN_TEMPERED}', where None "
            f"means {DEFAULT_EVEN_TEMPERED_BETA}."
        ),
    )
    even_tempered_max_l: dict[str, Annotated[int, Field(ge=0, le=MAX_AUX_L)]] = Field(
        default_factory=dict,
        description=(
            "Highest angular momentum of the even-tempered auxiliary functions per element, "
            "e.g. {'Si': 3}; elements not listed keep PySCF's rule (twice the orbital "
            "basis's highest l). An l above the rule reuses the exponents of the rule's "
            "highest l: f functions on Si follow the empty dangling bonds of a Si(100) "
            f"surface into the vacuum. Only with aux_basis='{EVEN_TEMPERED}'."
        ),
    )
    metric: MetricKind = Field(
        "coulomb",
        description=(
            "Metric of the RI fit: 'coulomb' (Coulomb interaction of the fit error; keeps "
            "the electron count to ~0.01 %), 'overlap' (L2 norm of the fit error) or, for "
            "periodic cells only, 'relative' (the error squared over |field| + "
            "relative_metric_floor, integrated on the cell's grid: the vacuum tail of a "
            "surface field, which STM images, counts like the bulk). Periodic cells need "
            "'overlap' or 'relative'."
        ),
    )
    relative_metric_floor: float = Field(
        1e-5,
        gt=0,
        description=(
            "With metric='relative': the floor added to |field| in the weight of the fit "
            "error, bohr^-3. Below it the fit error counts as an absolute one, so that the "
            "far vacuum, where Gaussians cannot follow an exponential decay, does not "
            "dominate; keep it below the STM isovalues of interest. Refused with other metrics."
        ),
    )
    relative_metric_power: float = Field(
        1.0,
        ge=1.0,
        le=2.0,
        description=(
            "With metric='relative': the power p of the weight 1 / (|field| + floor)^p. "
            "1 weighs the squared error by the field's inverse; 2 minimises the squared "
            "relative error, which sets the error of an STM tip height, so low-field "
            "regions such as the troughs between dimer rows count as much as the peaks. "
            "Refused with other metrics."
        ),
    )
    constrain_charge: bool = Field(
        False,
        description=(
            "Impose the integral of a total-density fit exactly (a Lagrange multiplier on "
            "the s-function integrals) when the electron count is given to the fit."
        ),
    )
    charge: int = Field(
        0,
        description=(
            "Net charge of the molecule, elementary charges. A structure whose "
            "atoms.info['charge'] is set (an extxyz 'charge=' field) keeps its own."
        ),
    )
    spin: int = Field(0, ge=0, description="2S: number of unpaired electrons.")
    unrestricted: bool | None = Field(
        None,
        description=(
            "Spin-unrestricted Kohn-Sham (UKS); None means RKS when spin = 0, else UKS. "
            "False with spin > 0 runs restricted open-shell Kohn-Sham (one spin channel)."
        ),
    )
    conv_tol: float = Field(1e-9, gt=0, description="SCF energy convergence threshold, hartree.")
    grid_level: int = Field(
        3,
        ge=0,
        le=9,
        description=(
            "PySCF DFT grid level (0-9) for the SCF and integration grids of molecules "
            "(periodic cells use the uniform grid of ke_cutoff)."
        ),
    )
    max_cycle: int = Field(100, ge=1, description="Maximum number of SCF iterations.")
    density_fit: bool = Field(
        False,
        description=(
            "Molecules only: density-fitted Coulomb (and exact exchange) in the SCF, PySCF's "
            "mf.density_fit(). Several times faster for tens of atoms; the converged "
            "density differs from plain SCF far below the RI floor of the fit."
        ),
    )
    density_fit_basis: str | None = Field(
        None,
        description=(
            "With density_fit: the JK-fitting basis of the SCF, a PySCF basis name such as "
            "'def2-universal-jkfit'; None means PySCF's choice for the orbital basis "
            "(def2-svp-jkfit for def2-SVP)."
        ),
    )
    pseudo: str | None = Field(
        None,
        description=(
            "Periodic cells only: GTH pseudopotential, a PySCF name such as 'gth-pbe' or "
            f"'gth-pade'; None means '{DEFAULT_PSEUDO}'. The orbital basis must then be a "
            "GTH basis ('gth-szv', 'gth-dzvp', ...). Molecules are all-electron: leave None."
        ),
    )
    kpts: tuple[
        Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]
    ] = Field(
        (1, 1, 1),
        description=(
            "Periodic cells only: Gamma-centred Monkhorst-Pack k-point grid, points along "
            "each lattice vector; (1, 1, 1) is the Gamma point alone. Must be 1 along a "
            "non-periodic (vacuum) axis."
        ),
    )
    ke_cutoff: float | None = Field(
        None,
        gt=0,
        description=(
            "Periodic cells only: kinetic-energy cutoff of the cell's uniform grid, "
            "hartree; None means PySCF's estimate from the basis (safe but costly: about "
            "580 hartree for H/Si gth-szv, where 100 hartree converges the energy of a "
            "Si slab to 5e-6 hartree and 50 hartree to 9e-3)."
        ),
    )
    smearing: float = Field(
        0.0,
        ge=0,
        description=(
            "Periodic cells only: Fermi-Dirac smearing width k_B T of the occupations, eV; "
            "0 means integer occupations. Helps the SCF of metallic slabs converge."
        ),
    )
    condition_limit: float = Field(
        1e12,
        gt=1.0,
        description=(
            "Largest accepted condition number of the RI metric S (dimensionless); above "
            "it the auxiliary basis is treated as linearly dependent and the fit fails."
        ),
    )

    @field_validator("xc")
    @classmethod
    def _known_functional(cls, value: str) -> str:
        from pyscf.dft import libxc

        try:
            libxc.parse_xc(value)
        except (KeyError, ValueError) as error:
            raise ValueError(f"PySCF does not know the functional '{value}': {error}") from None
        return value

    @field_validator("even_tempered_max_l")
    @classmethod
    def _element_symbols(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(chemical_symbols[1:]))
        if unknown:
            raise ValueError(
                f"even_tempered_max_l has keys {unknown} that are not element symbols; "
                "use symbols such as 'Si' or 'H'"
            )
        return value

    @model_validator(mode="after")
    def _dependent_options_only_where_they_apply(self) -> PySCFOptions:
        # a default value changes nothing and is stored in every dataset's options
        for (setting, wanted), names in DEPENDENT_OPTIONS.items():
            actual = getattr(self, setting)
            if actual == wanted:
                continue
            for name in names:
                default = type(self).model_fields[name].get_default(call_default_factory=True)
                if getattr(self, name) != default:
                    raise ValueError(
                        f"{name} applies only to {setting}='{wanted}', but {setting} is "
                        f"'{actual}'; remove {name} or set {setting}: {wanted}"
                    )
        return self

    @property
    def is_unrestricted(self) -> bool:
        """Whether the SCF is spin-unrestricted (the resolved ``unrestricted``)."""
        return self.spin != 0 if self.unrestricted is None else self.unrestricted

    @property
    def periodic_pseudo(self) -> str:
        """Pseudopotential of periodic cells (the resolved ``pseudo``)."""
        return self.pseudo or DEFAULT_PSEUDO

    @property
    def beta(self) -> float:
        """Exponent ratio of the even-tempered auxiliary basis."""
        return self.even_tempered_beta or DEFAULT_EVEN_TEMPERED_BETA


__all__ = ["EVEN_TEMPERED", "PySCFOptions"]
