"""From a request in Slack to a job for the queue: resolve the models and data sets it names
(within the requesting workspace only), check the parameters with the engine's torch-free
params classes, and build a `JobCreate` that carries where the answer goes.

Every builder raises `CommandError` with a message for the user when the request can't run.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.commands import ClassifyCommand, CommandError, EvalCommand, FinetuneCommand
from bot.store import BotStore, Row
from engine.jobs import get_kind
from engine.registry import builtin_models
from storage.tables import JobCreate

log = logging.getLogger(__name__)
#: What `/lm eval` and the Evaluate button use when no model is promoted for the task.
DEFAULT_EVAL_MODEL = {"classify": "minilm", "chat": "smollm2"}
#: Which model tasks can be evaluated on which data set task.
_COMPATIBLE = {"classify": ("classify", "embed"), "chat": ("chat",)}


@functools.cache
def builtin_tasks() -> dict[str, str]:
    """Built-in model names installed here and their tasks (read once)."""
    return {spec.name: spec.task for spec in builtin_models()}


@dataclass(frozen=True)
class Origin:
    """Who asked for a job, in which workspace, and where its messages go."""

    team_id: str
    workspace_id: int
    user_id: str
    channel_id: str | None
    thread_ts: str | None = None
    response_url: str | None = None

    def job(self, kind: str, params: dict[str, Any], key: str | None) -> JobCreate:
        """A job to enqueue; `key` makes enqueueing it twice return the first job."""
        return JobCreate(workspace_id=self.workspace_id, kind=kind, params=params,
                         idempotency_key=key, team_id=self.team_id, channel_id=self.channel_id,
                         user_id=self.user_id, thread_ts=self.thread_ts,
                         response_url=self.response_url)


def _check(kind: str, params: dict[str, Any]) -> None:
    """Validate a job's params with the engine's torch-free builder (as the worker will)."""
    try:
        get_kind(kind).build(params)
    except (ValueError, TypeError) as error:
        raise CommandError(str(error)) from None
    except ImportError:  # the engine can't build this kind without its heavy modules
        log.debug("no torch-free validation of %s jobs", kind)


def job_view(job: Row) -> Row:
    """A job row as the job blocks show it: the data set named by its file, not its path."""
    params = dict(job.get("params") or {})
    if params.get("data") and not params.get("dataset"):
        params["dataset"] = Path(str(params["data"])).stem
    return {**job, "params": params}


async def resolve_model(store: BotStore, workspace_id: int, name: str) -> tuple[str, str | None]:
    """`(name, task)` of a built-in model, a model of this workspace, or a hub id (task None)."""
    if name in builtin_tasks():
        return name, builtin_tasks()[name]
    found = await store.find_model(workspace_id, name)
    if found is not None:
        return found["name"], found["task"]
    if "/" in name:
        return name, None
    raise CommandError(f"there is no model {name!r} here; `/lm models` lists them")


async def resolve_dataset(store: BotStore, workspace_id: int, ref: str) -> Row:
    """A data set of this workspace by name or id, whose file is still there."""
    found = await store.get_dataset(workspace_id, ref)
    if found is None:
        raise CommandError(f"there is no data set {ref!r} here; `/lm datasets` lists them "
                           "(upload a CSV, TSV, JSONL or JSON file to add one)")
    if not Path(found["stored_path"]).is_file():
        raise CommandError(f"the file of data set {found['name']!r} is missing; upload it again")
    return found


async def classify_job(store: BotStore, origin: Origin, command: ClassifyCommand,
                       key: str | None) -> JobCreate:
    """Classify one text: the named model, zero-shot labels, or the workspace's promoted
    classifier (else the engine's default, `sentiment`)."""
    model = command.model
    if model:
        model, task = await resolve_model(store, origin.workspace_id, model)
        if task == "chat":
            raise CommandError(f"{model!r} is a chat model; try `/lm chat model={model} ...`")
        if task == "embed" and not command.labels:
            raise CommandError(f"{model!r} is an encoder: give labels=a,b,c for zero-shot "
                               "classification, or fine-tune it first")
    elif not command.labels:
        model = await store.promoted(origin.workspace_id, "classify")
    params: dict[str, Any] = {"texts": [command.text]}
    if model:
        params["model"] = model
    if command.labels:
        params["labels"] = list(command.labels)
    _check("classify", params)
    return origin.job("classify", params, key)


async def chat_job(store: BotStore, origin: Origin, text: str, model: str | None,
                   key: str | None) -> JobCreate:
    """One chat reply to `text` with the named model or the workspace's promoted chat model."""
    if not text.strip():
        raise CommandError("ask me something, like `@lmops how do I reset my password?`")
    if model:
        model, task = await resolve_model(store, origin.workspace_id, model)
        if task not in (None, "chat"):
            raise CommandError(f"{model!r} is not a chat model; `/lm models` lists them")
    else:
        model = await store.promoted(origin.workspace_id, "chat")
    params: dict[str, Any] = {"messages": [{"role": "user", "content": text.strip()}]}
    if model:
        params["model"] = model
    _check("chat", params)
    return origin.job("chat", params, key)


async def finetune_job(store: BotStore, origin: Origin, command: FinetuneCommand,
                       key: str | None) -> tuple[JobCreate, Row]:
    """A fine-tune of a stored data set; returns the job and the data set."""
    dataset = await resolve_dataset(store, origin.workspace_id, command.dataset)
    if command.task and command.task != dataset["task"]:
        raise CommandError(f"data set {dataset['name']!r} is a {dataset['task']} data set, so "
                           f"task={command.task} can't train on it")
    if command.base:
        base, task = await resolve_model(store, origin.workspace_id, command.base)
        if task == "chat" and dataset["task"] != "chat":
            raise CommandError(f"{base!r} is a chat model; a classify data set needs an encoder "
                               "base such as minilm")
    if command.model_name and await store.find_model(origin.workspace_id, command.model_name):
        raise CommandError(f"a model named {command.model_name!r} exists already; choose "
                           "another name=")
    try:
        params = command.finetune_params(dataset["stored_path"], task=dataset["task"]).to_json()
    except ValueError as error:
        raise CommandError(str(error)) from None
    _check("finetune", params)
    return origin.job("finetune", params, key), dataset


async def eval_job(store: BotStore, origin: Origin, command: EvalCommand,
                   key: str | None) -> tuple[JobCreate, Row]:
    """An evaluation of a model on a stored data set; returns the job and the data set."""
    dataset = await resolve_dataset(store, origin.workspace_id, command.dataset)
    model, task = await resolve_model(store, origin.workspace_id, command.model)
    if task is not None and task not in _COMPATIBLE.get(dataset["task"], ()):
        raise CommandError(f"{model!r} is a {task} model and {dataset['name']!r} a "
                           f"{dataset['task']} data set; they don't go together")
    params = {"model": model, "data": dataset["stored_path"]}
    return origin.job("evaluate", params, key), dataset


async def default_eval_model(store: BotStore, workspace_id: int, task: str) -> str:
    """The model the Evaluate button uses: the promoted one, else a built-in baseline."""
    return await store.promoted(workspace_id, task) or DEFAULT_EVAL_MODEL.get(task, "minilm")
