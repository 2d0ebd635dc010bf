"""Run `rhocore` commands in one process of a torchrun group, recording what it writes.

Usage (under ``python -m torch.distributed.run``): ``distributed_driver.py RECORD_DIR WATCHED
COMMANDS_JSON``. COMMANDS_JSON is a list of argument lists of the `rhocore` command line; all
run inside one process group. ``RECORD_DIR/rank<R>.json`` gets, for this process, every path
under WATCHED it opened for writing, created, renamed, removed or saved as TorchScript, and
the outcome of every command (``"ok"`` or its error message).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
import torch

from rhocore.cli import cli
from rhocore.training import distributed

WRITE_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree"}


def main() -> None:
    record_dir, watched, commands = Path(sys.argv[1]), str(Path(sys.argv[2])), sys.argv[3]
    writes: list[list[str]] = []

    def audit(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (mode and any(c in mode for c in "wax+")) or (
                flags and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            )
            if writing and str(path).startswith(watched):
                writes.append([event, str(path)])
        elif event in WRITE_EVENTS and str(args[0]).startswith(watched):
            writes.append([event, str(args[0])])

    jit_save = torch.jit.save

    def recording_jit_save(module, path, *args, **kwargs):
        writes.append(["torch.jit.save", str(path)])
        return jit_save(module, path, *args, **kwargs)

    torch.jit.save = recording_jit_save
    sys.addaudithook(audit)
    outcomes = []
    with distributed.session():
        rank, size = distributed.rank(), distributed.world_size()
        for arguments in json.loads(commands):
            try:
                cli.main(arguments, standalone_mode=False)
                outcomes.append("ok")
            except click.ClickException as error:
                outcomes.append(error.format_message())
    watched_writes = list(writes)
    record = {"rank": rank, "world_size": size, "writes": watched_writes, "outcomes": outcomes}
    (record_dir / f"rank{rank}.json").write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
