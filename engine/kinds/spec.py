"""What a job kind is: its params dataclass, its runner, and the facts the queue, the worker
and the front ends read about it. One `JobSpec` per kind, declared in the kind's own module
(`engine/kinds/<kind>.py`) with `register_kind(...)`, the way peft's tuners call
`register_peft_method(...)`.

Torch-free: a kind's module imports only its params and this; its runner imports the heavy
engine modules when a worker runs it.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from engine.errors import DataError, EngineError, NoClassifierError, UnknownModelError
from engine.registry import ModelRegistry
from engine.settings import Settings

# Lower runs first: people wait for predictions, then evaluations, then fine-tunes.
PRIORITY_PREDICT, PRIORITY_EVALUATE, PRIORITY_FINETUNE, PRIORITY_OTHER = 0, 10, 20, 30
#: Errors that retrying won't fix: bad input, a model that isn't there.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (DataError, UnknownModelError,
                                                     NoClassifierError, ValueError)
Lane = Literal["predictions", "general"]


@dataclass
class JobContext:
    """What a runner gets besides its params: where to write, how to report, when to stop."""

    settings: Settings
    registry: ModelRegistry
    job_id: int | str
    workspace: str = "local"
    progress: Callable[[dict[str, Any]], None] = lambda _: None
    should_cancel: Callable[[], bool] = lambda: False

    @property
    def artifacts(self) -> Path:
        """This job's own folder: a requeued job finds its checkpoints here again."""
        return self.settings.artifacts / "jobs" / str(self.job_id)


class Group(Protocol):
    """Queued jobs that one call answers (see `Batching`)."""

    workspace_id: int
    job_ids: list[int]


class Batching(Protocol):
    """How queued jobs of a kind are answered together: a lane that claims one claims up to
    `limit - 1` more, `group` splits them into groups and jobs that run alone, and `run`
    answers a group with one call, returning each job's own result."""

    limit: int

    def group(self, jobs: Sequence[tuple[int, int, Any]]) -> tuple[list[Group], list[int]]: ...

    def run(self, group: Any, ctx: JobContext) -> dict[int, dict[str, Any]]: ...


def default_summary(result: Mapping[str, Any]) -> str:
    return ""


@dataclass(frozen=True)
class CliCommand:
    """`lmops <kind>` for a kind the CLI has no hand-written command for: TEXT arguments,
    `--file F` (CSV/TSV/JSONL/JSON/text) or stdin lines fill the params field `inputs`, the
    fields in `options` become `--flags`, and the result is printed with `show` (or, with
    `--json`, as `to_json(result)`)."""

    help: str
    inputs: str
    show: Callable[[Mapping[str, Any]], str]
    to_json: Callable[[Mapping[str, Any]], Any] = lambda result: result
    options: tuple[str, ...] = ()
    example: str = ""


@dataclass(frozen=True)
class JobSpec:
    """One job kind.

    - `params`: the frozen dataclass the bot or the CLI builds and the worker rebuilds (from
      the JSON the queue stores) with `build`; its fields carry `metadata={"help": ...}`.
    - `run(params, ctx) -> result JSON`: the runner.
    - `priority` (lower first), `lane` ("predictions" lanes answer while a fine-tune runs),
      `prefers_gpu` (GPU workers take these first), `max_attempts`, `permanent_errors`
      (failures that are never retried), `batching` (jobs answered together, or None),
      `summarize(result) -> str` (one line for job lists), `title` (for people),
      `function` ("module:name" of the library function `engine.<name>`, if any), `cli`
      (a generic `lmops <name>` command, for kinds without a hand-written one).
    """

    name: str
    params: type
    run: Callable[[Any, JobContext], dict[str, Any]]
    priority: int = PRIORITY_OTHER
    lane: Lane = "general"
    prefers_gpu: bool = False
    max_attempts: int = 3
    permanent_errors: tuple[type[BaseException], ...] = PERMANENT_ERRORS
    batching: Batching | None = None
    summarize: Callable[[Mapping[str, Any]], str] = default_summary
    title: str = ""
    function: str | None = None
    cli: CliCommand | None = None

    def __post_init__(self) -> None:
        if not dataclasses.is_dataclass(self.params):
            raise TypeError(f"job kind {self.name!r}: params must be a dataclass")
        if self.lane not in typing.get_args(Lane):
            raise ValueError(f"job kind {self.name!r}: lane {self.lane!r} is not one of "
                             f"{', '.join(typing.get_args(Lane))}")
        if self.max_attempts < 1:
            raise ValueError(f"job kind {self.name!r}: max_attempts must be at least 1")
        if not self.title:
            object.__setattr__(self, "title", self.name.replace("_", " ").capitalize())

    def build(self, data: Mapping[str, Any]) -> Any:
        """The params from their JSON (as the queue stores them); unknown keys are named."""
        return from_mapping(self.params, data)

    def job_fields(self, params: Any) -> dict[str, Any]:
        """What a queue entry of this kind holds besides its routing: kind, params JSON,
        priority and attempts. `params` is this kind's params object (checked)."""
        if not isinstance(params, self.params):
            raise TypeError(f"a {self.name} job needs {self.params.__name__}, "
                            f"not {type(params).__name__}")
        return {"kind": self.name, "params": params_json(params), "priority": self.priority,
                "max_attempts": self.max_attempts}


def from_mapping(cls: type, data: Mapping[str, Any]) -> Any:
    """Build the dataclass `cls` from JSON-like `data`, naming unknown keys instead of a
    TypeError; lists become tuples."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{cls.__name__} needs a JSON object, not {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown option{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(known))})")
    try:
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})
    except TypeError as error:  # a required field is missing
        raise ValueError(f"{cls.__name__}: {error}") from None


def params_json(params: Any) -> dict[str, Any]:
    """A params dataclass as JSON (`to_json()` where it has one): tuples as lists, paths as
    text."""
    if hasattr(params, "to_json"):
        return params.to_json()
    return {f.name: _json_value(getattr(params, f.name)) for f in dataclasses.fields(params)
            if f.init}


def _json_value(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_json_value(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _json_value(v) for k, v in value.items()}
    return value


_KINDS: dict[str, JobSpec] = {}


def register_kind(spec: JobSpec) -> JobSpec:
    """Add a job kind (called by the kind's own module, listed in `engine.kinds`)."""
    if spec.name in _KINDS and _KINDS[spec.name] is not spec:
        raise EngineError(f"job kind {spec.name!r} is registered twice")
    _KINDS[spec.name] = spec
    return spec


def registered() -> dict[str, JobSpec]:
    return _KINDS


__all__ = ["Batching", "CliCommand", "Group", "JobContext", "JobSpec", "PERMANENT_ERRORS",
           "from_mapping", "params_json", "register_kind"]
