"""The registry of job kinds: one typed params builder and one runner per kind.

The CLI (`--queue`), the slash-command handlers and the worker all go through this table.
Building params is torch-free (the bot validates a job before enqueueing it); runners are named
as "module:function" and imported only when a worker runs them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.registry import ModelRegistry
from engine.settings import Settings

# Lower runs first: people wait for predictions, then evaluations, then fine-tunes.
PRIORITY_PREDICT, PRIORITY_EVALUATE, PRIORITY_FINETUNE, PRIORITY_OTHER = 0, 10, 20, 30


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


@dataclass(frozen=True)
class JobKind:
    name: str
    build: Callable[[Mapping[str, Any]], Any]
    runner: str
    priority: int
    prefers_gpu: bool = False

    def run(self, params: Any, ctx: JobContext) -> dict[str, Any]:
        module, function = self.runner.split(":")
        return getattr(importlib.import_module(module), function)(params, ctx)


def from_mapping(cls: type, data: Mapping[str, Any], *, extra: tuple[str, ...] = ()) -> Any:
    """Build the dataclass `cls` from JSON-like `data`, naming unknown keys instead of a TypeError."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known - set(extra))
    if unknown:
        raise ValueError(f"unknown option{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(known))})")
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known}
    return cls(**values)


@dataclass(frozen=True)
class NoopParams:
    """A job that does nothing (or sleeps, or fails): for queue tests and benchmarks."""

    sleep: float = 0.0
    fail: bool = False
    steps: int = 0

    def __post_init__(self) -> None:
        if self.sleep < 0 or self.steps < 0:
            raise ValueError("sleep and steps must not be negative")


@dataclass(frozen=True)
class ClassifyJob:
    texts: tuple[str, ...]
    params: Any


@dataclass(frozen=True)
class ChatJob:
    messages: Any
    params: Any


def _build_classify(data: Mapping[str, Any]) -> ClassifyJob:
    from engine.classify_params import ClassifyParams

    texts = data.get("texts")
    if not texts or not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
        raise ValueError("a classify job needs texts: a list of strings")
    rest = {k: v for k, v in data.items() if k != "texts"}
    return ClassifyJob(tuple(texts), from_mapping(ClassifyParams, rest))


def _build_chat(data: Mapping[str, Any]) -> ChatJob:
    from engine.dialogue import ChatParams

    messages = data.get("messages")
    if not messages:
        raise ValueError("a chat job needs messages: a message or a list of {role, content}")
    rest = {k: v for k, v in data.items() if k != "messages"}
    return ChatJob(messages, from_mapping(ChatParams, rest))


def _build_evaluate(data: Mapping[str, Any]) -> Any:
    from engine.evaluation import EvalParams

    return from_mapping(EvalParams, data)


def _build_finetune(data: Mapping[str, Any]) -> Any:
    from engine.finetune_params import FinetuneParams

    return from_mapping(FinetuneParams, data)


KINDS: dict[str, JobKind] = {
    kind.name: kind for kind in (
        JobKind("classify", _build_classify, "engine.job_runners:run_classify", PRIORITY_PREDICT),
        JobKind("chat", _build_chat, "engine.job_runners:run_chat", PRIORITY_PREDICT),
        JobKind("evaluate", _build_evaluate, "engine.job_runners:run_evaluate", PRIORITY_EVALUATE),
        JobKind("finetune", _build_finetune, "engine.job_runners:run_finetune", PRIORITY_FINETUNE,
                prefers_gpu=True),
        JobKind("noop", lambda d: from_mapping(NoopParams, d), "engine.job_runners:run_noop",
                PRIORITY_OTHER),
    )
}


def get_kind(name: str) -> JobKind:
    try:
        return KINDS[name]
    except KeyError:
        raise EngineError(f"unknown job kind {name!r}; known: {', '.join(KINDS)}") from None
