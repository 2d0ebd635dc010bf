"""The guess's Coulomb matrix from a density-fitted SCF's own tensors, which the SCF reuses."""

from __future__ import annotations

import numpy as np
import pytest
from pyscf import df, dft, gto
from rhocore_pyscf.guess.density import (
    coulomb_matrix,
    coulomb_matrix_from_df,
    guess_from_density,
)

pytestmark = pytest.mark.dft

AUX = "def2-universal-jkfit"


@pytest.fixture(scope="module")
def mol(water) -> gto.Mole:
    return gto.M(
        atom=list(zip(water.get_chemical_symbols(), water.positions.tolist(), strict=True)),
        basis="def2-svp",
        verbose=0,
    )


def test_coulomb_matrix_from_the_df_tensors_equals_the_three_centre_one(mol):
    with_df = df.DF(mol, auxbasis=AUX)
    with_df.build()
    coefficients = np.random.default_rng(0).normal(size=with_df.auxmol.nao_nr())
    direct = coulomb_matrix(mol, with_df.auxmol, coefficients)
    from_df = coulomb_matrix_from_df(with_df, with_df.auxmol, coefficients)
    np.testing.assert_allclose(from_df, direct, atol=1e-10)


def test_an_scf_fitting_on_another_basis_gives_its_own_fitted_coulomb_matrix(mol):
    """A density on def2-universal-jkfit, J through PySCF's default def2-universal-jfit
    tensors: PySCF's own density-fitted J of the density's three-centre projections."""
    density = df.DF(mol, auxbasis=AUX)
    density.build()
    scf_df = dft.RKS(mol, xc="pbe").density_fit().with_df
    assert scf_df.auxbasis != AUX
    coefficients = np.random.default_rng(1).normal(size=density.auxmol.nao_nr())
    scf_df.build()
    cross = gto.intor_cross("int2c2e", scf_df.auxmol, density.auxmol) @ coefficients
    fitted = np.linalg.solve(scf_df.auxmol.intor("int2c2e"), cross)
    expected = coulomb_matrix(mol, scf_df.auxmol, fitted)
    from_df = coulomb_matrix_from_df(scf_df, density.auxmol, coefficients)
    np.testing.assert_allclose(from_df, expected, atol=1e-9)


def test_a_guess_built_on_the_scf_tensors_and_grid_is_reused_and_converges(mol):
    reference = dft.RKS(mol, xc="pbe").density_fit(auxbasis=AUX)
    reference.conv_tol = 1e-10
    reference.kernel()
    auxmol = reference.with_df.auxmol
    dm = reference.make_rdm1()
    # the exact density's RI fit in the Coulomb metric: the best any density model can give
    j2c = auxmol.intor("int2c2e", hermi=1)
    projections = np.einsum("ijp,ij->p", df.incore.aux_e2(mol, auxmol, "int3c2e"), dm)
    fitted = np.linalg.solve(j2c, projections)

    mf = dft.RKS(mol, xc="pbe").density_fit(auxbasis=AUX)
    mf.conv_tol = 1e-10
    guess = guess_from_density(mol, auxmol, fitted, "pbe", grids=mf.grids, with_df=mf.with_df)
    tensors, points = mf.with_df._cderi, mf.grids.coords
    cycles = []
    mf.callback = lambda envs: cycles.append(envs["cycle"])
    mf.kernel(dm0=guess.density_matrix)
    assert mf.with_df._cderi is tensors and mf.grids.coords is points
    assert mf.converged and mf.e_tot == pytest.approx(reference.e_tot, abs=1e-8)
    minao = dft.RKS(mol, xc="pbe").density_fit(auxbasis=AUX)
    minao.conv_tol = 1e-10
    minao_cycles = []
    minao.callback = lambda envs: minao_cycles.append(envs["cycle"])
    minao.kernel()
    assert len(cycles) < len(minao_cycles)
