"""The cclib backend: fields of finished outputs of other QC codes, fitted with PySCF integrals."""
