"""The ``rhocore`` command line: parses arguments and calls the workflows.

User errors (:class:`rhocore.errors.RhocoreError`: bad config, unknown plugin, unreadable
file) are printed as one clear line and exit with status 1; any other exception is a bug and
keeps its traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from rhocore.errors import RhocoreError
from rhocore.plugins.registry import KINDS, get_plugin_manager, get_registry


class UserFacingGroup(click.Group):
    """A click group that prints user errors (:class:`RhocoreError`) as one-line messages.

    Line breaks inside a message are folded, so that each error is one line. Every other
    exception propagates with its traceback: it is a bug to report, not an input to fix.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except RhocoreError as error:
            raise click.ClickException(" ".join(str(error).split())) from None


@click.group(cls=UserFacingGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.version_option(package_name="rhocore")
def cli(verbose: bool) -> None:
    """rhocore: learn electronic-structure fields from atomic structure."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )


@cli.command()
def plugins() -> None:
    """List every backend, target, model and validation scorer with its distribution and version."""
    registry = get_registry()
    for kind in KINDS:
        click.echo(f"{kind}s:")
        for info in registry.entries(kind):
            click.echo(f"  {info.name:<12} {info.distribution} {info.version}")


@cli.command()
@click.argument(
    "kind",
    type=click.Choice(
        ["backend", "target", "model", "scorer", "descriptor", "training", "executor"]
    ),
)
@click.argument("name", required=False)
def schema(kind: str, name: str | None) -> None:
    """Print the JSON schema of a plugin's options (or of the descriptor/training section,
    or of an executor kind: local, address, slurm, pbs, serial)."""
    if kind == "descriptor":
        from rhocore.descriptors.features import DescriptorOptions as options_cls
    elif kind == "training":
        from rhocore.training.options import TrainingOptions as options_cls
    elif kind == "executor":
        from rhocore.parallel.executor import EXECUTOR_KINDS

        if (name or "local") not in EXECUTOR_KINDS:
            raise click.UsageError(f"executor kinds: {', '.join(EXECUTOR_KINDS)}")
        options_cls = EXECUTOR_KINDS[name or "local"]
    else:
        if name is None:
            raise click.UsageError(f"give the {kind} name, e.g. `rhocore schema {kind} NAME`")
        options_cls = get_registry().get(kind, name).Options
    click.echo(json.dumps(options_cls.model_json_schema(), indent=2))


@cli.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("dataset.h5"),
    show_default=True,
    help="Dataset file; an existing one is resumed.",
)
def generate(config: Path, output: Path) -> None:
    """Run DFT and RI fits of every structure in CONFIG into a dataset.

    The structures are computed where CONFIG's executor section says: a local Dask
    cluster by default, an existing scheduler, or SLURM/PBS jobs.
    """
    from rhocore.workflows.config import load_config
    from rhocore.workflows.generate import generate as run

    summary = run(load_config(config), output)
    click.echo(summary.table())
    if summary.failed:
        sys.exit(1)


@cli.group()
def dataset() -> None:
    """Inspect, verify and merge dataset files."""


_DATASET_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@dataset.command()
@click.argument("path", metavar="DATASET", type=_DATASET_FILE)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--metric-cutoff",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Also say what training.metric_cutoff (angstrom) keeps and the error it makes.",
)
def info(path: Path, as_json: bool, metric_cutoff: float | None) -> None:
    """What DATASET holds; works while `rhocore generate` is still writing it."""
    from rhocore.workflows.dataset_info import dataset_info

    summary = dataset_info(path, metric_cutoff)
    click.echo(json.dumps(summary.as_dict(), indent=1) if as_json else summary.table())


@dataset.command()
@click.argument("path", metavar="DATASET", type=_DATASET_FILE)
@click.option(
    "--rtol", type=float, default=1e-8, show_default=True, help="Tolerance of S = S^T, w = S d."
)
def check(path: Path, rtol: float) -> None:
    """Verify every entry of DATASET; exit status 1 when anything is wrong."""
    from rhocore.workflows.dataset_check import check_dataset

    report = check_dataset(path, rtol)
    click.echo(report.table())
    if not report.ok:
        sys.exit(1)


@dataset.command()
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=_DATASET_FILE)
@click.option("--renumber", is_flag=True, help="Number the inputs' entries one after another.")
def merge(output: Path, inputs: tuple[Path, ...], renumber: bool) -> None:
    """Merge datasets INPUTS into OUTPUT (an existing OUTPUT is completed)."""
    from rhocore.workflows.dataset_merge import merge_datasets

    click.echo(merge_datasets(output, list(inputs), renumber=renumber).table())


@cli.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--dataset",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Dataset made by `rhocore generate` (or imported).",
)
@click.option(
    "--validation-dataset",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Validate on every structure of this dataset instead of a random part of DATASET "
    "(same backend, target and metric).",
)
@click.option(
    "-o",
    "--output",
    "run_dir",
    type=click.Path(path_type=Path),
    default=Path("runs/train"),
    show_default=True,
    help="Run directory.",
)
def train(config: Path, dataset: Path, validation_dataset: Path | None, run_dir: Path) -> None:
    """Train a model on DATASET with the model/training sections of CONFIG."""
    from rhocore.training import distributed
    from rhocore.workflows.config import load_config
    from rhocore.workflows.train import train_run

    with distributed.session():  # under torchrun: all processes train, process 0 reports
        result = train_run(
            load_config(config), dataset, run_dir, validation_dataset=validation_dataset
        )
        main = distributed.is_main()
    if main:
        click.echo(
            f"best loss {result.best_loss:.6g} at epoch {result.best_epoch}; "
            f"model: {run_dir}/model.pt"
        )


@cli.command()
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    default=Path("metrics.json"),
    show_default=True,
    help="Where to write the metrics.",
)
@click.option(
    "--plot",
    type=click.Path(path_type=Path),
    default=None,
    help="Parity plot PNG (default: next to the JSON file).",
)
@click.option(
    "--subset",
    type=click.Choice(["all", "test"]),
    default="all",
    show_default=True,
    help="'test': only the structures the model held out in training.",
)
@click.option("--no-grid", is_flag=True, help="Skip the grid metrics (metric error only).")
@click.option(
    "--properties",
    default=None,
    help="Derived quantities compared with DFT, comma-separated: electron_count, "
    "dipole, hartree_energy, electrostatic_energy, xc_energy, or 'all'.",
)
def evaluate(
    model: Path,
    dataset: Path,
    json_path: Path,
    plot: Path | None,
    subset: str,
    no_grid: bool,
    properties: str | None,
) -> None:
    """Compare MODEL's predictions with the references in DATASET."""
    from rhocore.models.file import load_model_file
    from rhocore.workflows.evaluate import evaluate as run
    from rhocore.workflows.evaluate import write_report

    model_file = load_model_file(model)
    indices = model_file.test_indices if subset == "test" else None
    report = run(model_file, dataset, indices=indices, grid=not no_grid, properties=properties)
    write_report(report, json_path, plot or json_path.with_suffix(".png"))
    click.echo(report.table())


@cli.command()
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.argument("structures", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("predictions.h5"),
    show_default=True,
)
@click.option(
    "--cube-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write one cube file per structure here.",
)
@click.option(
    "--cube-spacing",
    type=float,
    default=0.2,
    show_default=True,
    help="Cube grid spacing in angstrom.",
)
@click.option(
    "--properties",
    default=None,
    help="Derived quantities of a total-density model, comma-separated: electron_count, "
    "dipole, hartree_energy, electrostatic_energy, xc_energy, or 'all'. "
    "Stored in OUTPUT and OUTPUT.properties.json.",
)
@click.option(
    "--esp",
    is_flag=True,
    help="Also write the electrostatic potential (hartree/e) as structure_<i>_esp.cube.",
)
@click.option(
    "--scf-guess",
    "--pyscf-guess",
    "scf_guess",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for files that start the training data's QC code from the predicted "
    "density (total-density models), named structure_<i>..., as that code's backend "
    "writes them (its write_scf_guess; the plugin's docs say how to use them).",
)
def predict(
    model: Path,
    structures: Path,
    output: Path,
    cube_dir: Path | None,
    cube_spacing: float,
    properties: str | None,
    esp: bool,
    scf_guess: Path | None,
) -> None:
    """Predict RI coefficients of every structure in STRUCTURES."""
    from rhocore.workflows.predict import predict as run

    coefficients = run(
        model,
        structures,
        output,
        cube_dir=cube_dir,
        cube_spacing=cube_spacing,
        properties=properties,
        esp=esp,
        scf_guess=scf_guess,
    )
    click.echo(f"predicted {len(coefficients)} structures -> {output}")
    if properties:
        click.echo(f"derived quantities -> {output}.properties.json")
    if scf_guess is not None:
        click.echo(f"SCF guesses -> {scf_guess}/")


@cli.command()
@click.argument("source", metavar="RUN_OR_CHECKPOINT", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("exported.pt"),
    show_default=True,
    help=(
        "The exported file (not the model file being exported); its extensions/ folder is "
        "written next to it."
    ),
)
def export(source: Path, output: Path) -> None:
    """Copy a model file, with the extensions/ folder it needs, or convert an old one.

    RUN_OR_CHECKPOINT is a run directory, its model.pt or its checkpoint.ckpt, or a
    model.pt of an earlier rhocore (TorchScript + rhocore.json), which is converted. The
    file is a metatomic model: it computes lambda-SOAP and the model from structures and
    returns the RI coefficients as output rhocore::<target>; it loads with torch,
    metatensor-torch and metatomic-torch and the extensions/ folder next to it.
    """
    from rhocore.workflows.export import export_model

    click.echo(export_model(source, output).table())


@cli.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.argument("structure")
@click.option(
    "--bias",
    type=float,
    required=True,
    help="Sample bias in V: negative images filled states, positive empty ones.",
)
@click.option(
    "--mode",
    type=click.Choice(["constant-height", "constant-current"]),
    required=True,
    help="The field on a plane, or the tip height that keeps the field at an isovalue.",
)
@click.option("--height", type=float, default=None, help="Tip height above the topmost atom (Å).")
@click.option(
    "--isovalue",
    type=float,
    default=None,
    help="Constant current: field value the tip follows (e/bohr^3); or give --height.",
)
@click.option("--frame", type=int, default=0, show_default=True, help="Frame of STRUCTURE.")
@click.option("--exact", is_flag=True, help="Dataset source: image the exact, un-fitted field.")
@click.option(
    "--reference",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Dataset whose RI reference is imaged too, with metrics.",
)
@click.option("--index", type=int, default=None, help="Entry of the --reference dataset.")
@click.option("--spacing", type=float, default=0.15, show_default=True, help="Grid step (Å).")
@click.option(
    "--repeat",
    type=(int, int),
    default=(2, 2),
    show_default=True,
    help="Cells tiled along a and b in the figures.",
)
@click.option(
    "--top-layer",
    type=float,
    default=1.0,
    show_default=True,
    help="Atoms this close (Å) to the topmost one are drawn as circles.",
)
@click.option(
    "--save-field",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the field as JSON for ase.dft.stm.STM(filename).",
)
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("stm"),
    show_default=True,
    help="Output directory.",
)
def stm(
    source: Path,
    structure: str,
    bias: float,
    mode: str,
    height: float | None,
    isovalue: float | None,
    frame: int,
    exact: bool,
    reference: Path | None,
    index: int | None,
    spacing: float,
    repeat: tuple[int, int],
    top_layer: float,
    save_field: Path | None,
    out_dir: Path,
) -> None:
    """Simulated STM image of STRUCTURE from an ILDOS model or dataset SOURCE.

    SOURCE is a trained model (run directory or model.pt), STRUCTURE then a file ASE
    reads; or a dataset.h5, STRUCTURE then the index of one of its entries.
    """
    from rhocore.workflows.stm import StmSettings, stm_images

    settings = StmSettings(bias, mode, height, isovalue, spacing, repeat, top_layer)
    result = stm_images(
        source,
        structure,
        settings,
        out_dir,
        frame=frame,
        exact=exact,
        reference=reference,
        reference_index=index,
        save_field=save_field,
    )
    click.echo(result.summary())


@cli.command()
@click.argument("name", type=click.Choice(["water-homo", "si-stm"]))
@click.option(
    "-o",
    "--output",
    "run_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Run directory (default runs/NAME).",
)
def demo(name: str, run_dir: Path | None) -> None:
    """Run a packaged end-to-end demo on the PySCF backend."""
    from rhocore.workflows.demo import run_demo

    run_demo(name, run_dir or Path("runs") / name)


def main() -> None:
    """Entry point of the ``rhocore`` script: core commands plus plugin sub-commands."""
    get_plugin_manager().hook.rhocore_register_commands(cli=cli)
    cli()
