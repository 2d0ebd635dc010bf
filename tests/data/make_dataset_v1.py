"""Write tests/data/dataset_v1.h5: a format-1 dataset kept to prove old files still load.

Run once, with the rhocore release that introduced format 1; never regenerate it with a
newer writer, or the test would no longer cover old files.
"""

from pathlib import Path

from rhocore.data.dataset import DatasetWriter
from rhocore.testing.datasets import failed_entry, synthetic_entry, synthetic_metadata

if __name__ == "__main__":
    path = Path(__file__).with_name("dataset_v1.h5")
    with DatasetWriter(path, synthetic_metadata()) as writer:
        writer.write(synthetic_entry(0))
        writer.write(failed_entry(1, "SCF did not converge"))
