"""Entry point of the ``rhocore-pyscf`` distribution (group ``rhocore``)."""

from __future__ import annotations

from rhocore.plugins import hookimpl


@hookimpl
def rhocore_register_backends() -> list[type]:
    """The ``pyscf`` backend; PySCF itself is imported only when the class is used."""
    from rhocore_pyscf.backend import PySCFBackend

    return [PySCFBackend]
