"""The command-line path shared by end-to-end tests: config -> generate -> train."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml
from click.testing import CliRunner


def generate_and_train(cli: click.Group, root: Path, config: dict[str, Any]) -> Path:
    """Run `rhocore generate` and `rhocore train` on ``config`` inside ``root``.

    Writes ``root/config.yaml``, the dataset ``root/data.h5`` and the run directory
    ``root/run``; a command that fails fails the calling test with its output. Without an
    ``executor`` section the structures are computed in this process (``kind: serial``):
    starting a Dask cluster costs seconds and is tested on its own.
    """
    config = {"executor": {"kind": "serial"}, **config}
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    runner = CliRunner()
    for arguments in (
        ["generate", str(root / "config.yaml"), "-o", str(root / "data.h5")],
        ["train", str(root / "config.yaml"), "--dataset", str(root / "data.h5")]
        + ["-o", str(root / "run")],
    ):
        result = runner.invoke(cli, arguments)
        assert result.exit_code == 0, f"rhocore {arguments[0]} failed:\n{result.output}"
    return root
