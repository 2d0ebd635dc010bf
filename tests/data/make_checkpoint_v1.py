"""Write tests/data/checkpoint_v1.ckpt: a format-1 checkpoint kept to prove old files load.

Run once from the repository root (``python tests/data/make_checkpoint_v1.py``) with the
rhocore release that introduced format 1; never regenerate it with a newer writer, or the
test would no longer cover old files.
"""

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from training_data import LAYOUT, linear_samples, make_descriptor  # noqa: E402

from rhocore.models.linear import LinearModel  # noqa: E402
from rhocore.training.options import TrainingOptions  # noqa: E402
from rhocore.training.trainer import train  # noqa: E402

if __name__ == "__main__":
    samples = linear_samples(6, seed=1)
    descriptor = make_descriptor()
    model = LinearModel(None, LAYOUT, descriptor.feature_sizes())
    with tempfile.TemporaryDirectory() as run_dir:
        options = TrainingOptions(epochs=3, batch_size=3)
        result = train(model, descriptor, samples[:4], samples[4:], options, Path(run_dir))
        shutil.copy(result.checkpoint, Path(__file__).with_name("checkpoint_v1.ckpt"))
