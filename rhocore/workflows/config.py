"""Run configuration: YAML in, validated in two stages, fully expanded restart file out.

Stage one checks the outer shape (``backend: {name, options}``, ``target: ...``); stage
two validates each ``options`` mapping with the named plugin's ``Options`` model. Every
error names the YAML path (``target.options.index``) and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ase
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rhocore.data.structure_files import (
    StructureError,
    check_finite_structure,
    expand_structure_paths,
    read_structure_file,
)
from rhocore.errors import RhocoreError, did_you_mean
from rhocore.parallel.executor import EXECUTOR_KINDS, ExecutorOptions, LocalExecutor
from rhocore.plugins.options import PluginOptions
from rhocore.plugins.registry import Kind, PluginError, Registry, get_registry
from rhocore.qc.backend import QCBackend
from rhocore.qc.target import Target


class ConfigError(RhocoreError, ValueError):
    """A configuration that cannot be used, with the YAML path of the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class PluginChoice(_Strict):
    """A plugin picked by name with its options."""

    name: str = Field(description="Registered plugin name (see `rhocore plugins`).")
    options: dict[str, Any] = Field(default_factory=dict, description="The plugin's options.")


class StructuresSpec(_Strict):
    """Where the structures come from: any file ASE reads, and which frames of it.

    A file name alone (``structures: water.xyz``) stands for ``{file: water.xyz}``.
    """

    file: Path = Field(
        description=(
            "Structure file (xyz, extxyz, cif, POSCAR, ...), or a glob pattern of files "
            "('outputs/*.log', 'runs/**/*.out'; read in sorted order). With a backend that "
            "reads finished QC outputs (cclib), the outputs themselves."
        )
    )
    index: str = Field(
        default=":",
        description="ASE index string of each file, e.g. ':', '0:50', '::2'.",
    )
    format: str | None = Field(default=None, description="ASE format name if not guessed.")

    @model_validator(mode="before")
    @classmethod
    def _file_alone(cls, data: Any) -> Any:
        """``structures: water.xyz`` is short for ``structures: {file: water.xyz}``."""
        return {"file": data} if isinstance(data, str | Path) else data


class SplitOptions(_Strict):
    """How a dataset is divided into training, validation and held-out test structures."""

    test_fraction: float = Field(
        default=0.2, ge=0.0, lt=1.0, description="Fraction held out for evaluation."
    )
    validation_fraction: float = Field(
        default=0.1, ge=0.0, lt=1.0, description="Fraction of the rest used for validation."
    )
    seed: int = Field(default=0, description="Seed of the random split.")


class RunConfig(_Strict):
    """The outer shape of a rhocore configuration file."""

    structures: StructuresSpec | None = None
    backend: PluginChoice | None = None
    target: PluginChoice | None = None
    descriptor: dict[str, Any] = Field(default_factory=dict)
    model: PluginChoice = Field(default_factory=lambda: PluginChoice(name="linear"))
    training: dict[str, Any] = Field(default_factory=dict)
    split: SplitOptions = Field(default_factory=SplitOptions)
    executor: dict[str, Any] = Field(default_factory=dict)


@dataclass
class ResolvedConfig:
    """A configuration whose every section is validated by its own Options model."""

    raw: RunConfig
    base_dir: Path
    backend_cls: type[QCBackend] | None
    backend_options: PluginOptions | None
    target_cls: type[Target] | None
    target_options: PluginOptions | None
    model_cls: type
    model_options: PluginOptions
    descriptor_options: BaseModel
    training_options: BaseModel
    executor_options: ExecutorOptions = field(default_factory=LocalExecutor)

    def make_backend(self) -> QCBackend:
        """An instance of the configured backend."""
        if self.backend_cls is None:
            raise ConfigError("the configuration has no 'backend' section")
        return self.backend_cls(self.backend_options)

    def make_target(self) -> Target:
        """An instance of the configured target."""
        if self.target_cls is None:
            raise ConfigError("the configuration has no 'target' section")
        return self.target_cls(self.target_options)

    def read_structures(self) -> list[ase.Atoms]:
        """The structures named in ``structures``, resolved relative to the config file.

        Each carries ``atoms.info["source_file"]``, the file it was read from. A backend
        that reads QC outputs (``reads_outputs``) reads the files itself, else ASE does.
        """
        spec = self.raw.structures
        if spec is None:
            raise ConfigError("the configuration has no 'structures' section")
        try:
            paths = expand_structure_paths(spec.file, self.base_dir)
        except StructureError as error:
            raise ConfigError(f"structures.file: {error}") from None
        reader = self.backend_cls if self.backend_cls and self.backend_cls.reads_outputs else None
        if reader is not None and (spec.index != ":" or spec.format is not None):
            raise ConfigError(
                f"structures: backend '{reader.name}' reads QC outputs itself, one structure "
                "per file; remove 'index' and 'format' (select files with the glob in 'file')"
            )
        frames: list[ase.Atoms] = []
        for path in paths:
            try:
                if reader is None:
                    frames += read_structure_file(path, spec.index, spec.format)
                else:
                    for atoms in reader.read_outputs(path):
                        check_finite_structure(atoms, f"'{path}'")
                        frames.append(atoms)
            except StructureError as error:
                raise ConfigError(f"structures.file: {error}") from error
        return frames

    def to_dict(self) -> dict[str, Any]:
        """The fully expanded configuration, every default written out."""
        out: dict[str, Any] = {}
        if self.raw.structures is not None:
            out["structures"] = self.raw.structures.model_dump(mode="json")
        for section, cls, options in (
            ("backend", self.backend_cls, self.backend_options),
            ("target", self.target_cls, self.target_options),
        ):
            if cls is not None and options is not None:
                out[section] = {"name": cls.name, "options": options.model_dump(mode="json")}
        out["descriptor"] = self.descriptor_options.model_dump(mode="json")
        out["model"] = {
            "name": self.model_cls.name,
            "options": self.model_options.model_dump(mode="json"),
        }
        out["training"] = self.training_options.model_dump(mode="json")
        out["split"] = self.raw.split.model_dump(mode="json")
        out["executor"] = self.executor_options.model_dump(mode="json")
        return out


def load_yaml(path: Path) -> dict[str, Any]:
    """Parse a YAML configuration file into a mapping, with errors naming the file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"configuration file '{path}' does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(error)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def _yaml_problem(error: yaml.YAMLError) -> str:
    """The YAML parser's complaint in one line, with its line and column."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return " ".join(f"{where}{problem}".split())


def resolve_config(
    data: dict[str, Any],
    *,
    base_dir: Path = Path("."),
    source: str = "config",
    registry: Registry | None = None,
) -> ResolvedConfig:
    """Validate ``data`` in two stages and return it with every plugin class resolved."""
    from rhocore.descriptors.features import DescriptorOptions
    from rhocore.training.options import TrainingOptions

    registry = registry or get_registry()
    raw = _validate(RunConfig, data, source, "")
    backend_cls, backend_options = _resolve_plugin(registry, "backend", raw.backend, source)
    target_cls, target_options = _resolve_plugin(registry, "target", raw.target, source)
    model_cls, model_options = _resolve_plugin(registry, "model", raw.model, source)
    return ResolvedConfig(
        raw=raw,
        base_dir=Path(base_dir),
        backend_cls=backend_cls,
        backend_options=backend_options,
        target_cls=target_cls,
        target_options=target_options,
        model_cls=model_cls,
        model_options=model_options,
        descriptor_options=_validate(DescriptorOptions, raw.descriptor, source, "descriptor"),
        training_options=_validate(TrainingOptions, raw.training, source, "training"),
        executor_options=_resolve_executor(raw.executor, source),
    )


def load_config(path: Path, registry: Registry | None = None) -> ResolvedConfig:
    """Read and validate a configuration file."""
    path = Path(path)
    return resolve_config(
        load_yaml(path), base_dir=path.parent, source=str(path), registry=registry
    )


def _resolve_plugin(
    registry: Registry, kind: Kind, choice: PluginChoice | None, source: str
) -> tuple[Any, Any]:
    if choice is None:
        return None, None
    try:
        cls = registry.get(kind, choice.name)
    except PluginError as error:
        raise ConfigError(" ".join(f"{source}: {kind}.name: {error}".split())) from None
    return cls, _validate(cls.Options, choice.options, source, f"{kind}.options")


def _resolve_executor(data: dict[str, Any], source: str) -> ExecutorOptions:
    """The ``executor`` section, validated by the model of its ``kind`` (default local)."""
    kind = data.get("kind", "local")
    model = EXECUTOR_KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        message = f"{source}: executor.kind: unknown executor {_short(kind)}; choose one of "
        message += ", ".join(EXECUTOR_KINDS) + "." + did_you_mean(str(kind), EXECUTOR_KINDS)
        raise ConfigError(message)
    return _validate(model, data, source, "executor")


def _validate(model: type[BaseModel], data: Any, source: str, prefix: str) -> Any:
    """``data`` validated by ``model``; every problem in one line, by YAML path."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            path = ".".join(str(part) for part in (prefix, *item["loc"]) if part != "")
            problem = f"{path or '(top level)'}: {item['msg']}"
            if item["type"] != "missing":
                problem += f" (got {_short(item['input'])})"
            problems.append(" ".join(problem.split()))
        raise ConfigError(f"{source}: invalid configuration: " + "; ".join(problems)) from None


def _short(value: Any, width: int = 60) -> str:
    """``repr(value)``, cut to ``width`` characters."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."
