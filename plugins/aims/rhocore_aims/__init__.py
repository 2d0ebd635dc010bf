"""rhocore QC backend for FHI-aims: run it, parse its RI outputs, import existing runs."""
