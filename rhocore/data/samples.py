"""One training structure as training reads it: atoms, reference coefficients and metric."""

from __future__ import annotations

from dataclasses import dataclass

import ase
import numpy as np

from rhocore.qc.metric import BlockMetric


@dataclass
class Sample:
    """One training structure: atoms (angstrom), reference coefficients d and metric S.

    The metric is dense (n, n) or atom-pair blocks (:class:`~rhocore.qc.metric.BlockMetric`).
    """

    atoms: ase.Atoms
    coefficients: np.ndarray
    metric: np.ndarray | BlockMetric
