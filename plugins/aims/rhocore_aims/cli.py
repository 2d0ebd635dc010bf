"""``rhocore aims ...``: import existing FHI-aims calculations, summarise FHI-aims files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.group()
def aims() -> None:
    """FHI-aims: import existing RI fits into a dataset, parse output files."""


@aims.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Dataset file to write; an existing one is extended (finished folders are skipped).",
)
@click.option(
    "--xyz",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Structures of processed folders; frame = the folder's integer name.",
)
@click.option(
    "--target",
    default="density",
    show_default=True,
    help="Name of the field the folders hold (density, homo, lumo, ...), stored in the dataset.",
)
@click.option(
    "--allow-pickle",
    is_flag=True,
    help="Read calc_info.pickle where no calc_info.json exists. Unpickling runs code from "
    "the file: only for files you trust.",
)
def import_(
    paths: tuple[Path, ...], output: Path, xyz: Path | None, target: str, allow_pickle: bool
) -> None:
    """Turn FHI-aims run folders or processed RI folders under PATHS into a dataset."""
    from rhocore_aims.importer import import_folders

    summary = import_folders(paths, output, xyz=xyz, target=target, allow_pickle=allow_pickle)
    click.echo(summary.table())
    if summary.skipped:
        sys.exit(1)


@aims.command("parse")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the summary to this JSON file (default: print it).",
)
def parse(file: Path, json_path: Path | None) -> None:
    """Summarise an FHI-aims output file (aims.out, ks_orbital_info.out, ...) as JSON."""
    from rhocore_aims.parsers.summary import summarize

    text = json.dumps(summarize(file), indent=2)
    if json_path is None:
        click.echo(text)
    else:
        json_path.write_text(text + "\n")
        click.echo(f"wrote {json_path}")
