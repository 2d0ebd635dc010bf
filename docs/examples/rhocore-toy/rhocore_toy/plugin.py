"""Entry point of the example plugin: registers the ``toy`` backend."""

from rhocore.api import hookimpl


@hookimpl
def rhocore_register_backends() -> list[type]:
    from rhocore_toy.backend import ToyBackend

    return [ToyBackend]
