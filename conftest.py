"""Settings of the whole test suite (core and plugin tests alike).

One BLAS/OpenMP/PyTorch thread per test process. ``make test`` runs two xdist workers on
two cores; each worker's libraries would otherwise start a thread per core, and the
oversubscribed threads spin-wait on each other: on a two-core machine with one core busy
the small matrix products of ``tests/test_training.py`` took 47 s of CPU instead of 8 s.
Subprocesses the tests start (the CLI, PySCF runs) inherit the setting. A variable already
set in the environment wins, so ``OMP_NUM_THREADS=4 pytest ...`` still works.
"""

from __future__ import annotations

import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
for _name in THREAD_VARIABLES:
    os.environ.setdefault(_name, "1")


def pytest_configure(config):
    """Pin PyTorch too, in case a plugin imported it before the variables were set."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
