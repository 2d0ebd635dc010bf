"""rhocore: learn electronic-structure fields of molecules and materials from structure.

Plugins import rhocore's public API from :mod:`rhocore.api`; users drive it through the
``rhocore`` command (:mod:`rhocore.cli`) and the workflows in :mod:`rhocore.workflows`.
"""

__version__ = "0.1.0"
