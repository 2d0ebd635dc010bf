"""``python -m rhocore`` (and ``torchrun -m rhocore``): the ``rhocore`` command line."""

from rhocore.cli import main

main()
