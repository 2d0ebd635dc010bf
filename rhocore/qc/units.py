"""Unit conversions shared by the core and the backends (CODATA 2018)."""

#: One bohr in angstrom.
BOHR_IN_ANGSTROM = 0.529177210903
