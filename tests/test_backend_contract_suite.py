"""The backend contract suite itself: core-only imports, and failures it must report."""

from __future__ import annotations

import subprocess
import sys

import ase
import numpy as np
import pytest

from rhocore.qc.backend import RIFit
from rhocore.qc.basis import BasisLayout
from rhocore.testing.backends import check_fit

LAYOUT = BasisLayout({1: (2, 1)})
H2 = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])


def _fit(**changes) -> RIFit:
    size = LAYOUT.size(H2.numbers)
    rng = np.random.default_rng(0)
    root = rng.normal(size=(size, size))
    metric = root @ root.T + size * np.eye(size)
    coefficients = rng.normal(size=size)
    integrals = np.where(LAYOUT.s_function_mask(H2.numbers), 1.0, 0.0)
    values = dict(
        coefficients=coefficients,
        projections=metric @ coefficients,
        metric=metric,
        metric_kind="overlap",
        layout=LAYOUT,
        integrals=integrals,
    )
    values.update(changes)
    return RIFit(**values)


def test_contract_suite_imports_no_qc_code():
    code = (
        "import sys, rhocore.testing.backends; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pyscf', 'rhocore_pyscf'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_consistent_fit_passes():
    check_fit(_fit(), LAYOUT, H2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda fit: {"metric": fit.metric + np.triu(np.ones_like(fit.metric), 1)}, "symmetric"),
        (lambda fit: {"metric": -fit.metric, "projections": -fit.projections}, "positive"),
        (lambda fit: {"projections": fit.projections + 1.0}, "S d"),
        (lambda fit: {"integrals": np.ones_like(fit.integrals)}, "l > 0"),
        (lambda fit: {"coefficients": fit.coefficients[:-1]}, "shape"),
        (lambda fit: {"layout": BasisLayout({1: (2,)})}, "layout"),
    ],
)
def test_inconsistent_fit_is_reported(change, message):
    fit = _fit()
    with pytest.raises(AssertionError, match=message):
        check_fit(_fit(**change(fit)), LAYOUT, H2)
