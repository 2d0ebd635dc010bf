"""One pure function per FHI-aims output file; arrays come back in rhocore's units and order."""
