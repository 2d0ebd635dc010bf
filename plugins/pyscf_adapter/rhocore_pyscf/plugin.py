"""Entry point of the ``rhocore-pyscf`` distribution (group ``rhocore``)."""

from __future__ import annotations

from rhocore.api import hookimpl


@hookimpl
def rhocore_register_backends() -> list[type]:
    """The ``pyscf`` and ``cclib`` backends; PySCF and cclib are imported only when used."""
    from rhocore_pyscf.backend import PySCFBackend
    from rhocore_pyscf.cclib.backend import CclibBackend

    return [PySCFBackend, CclibBackend]
