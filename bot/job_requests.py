"""From a request in Slack to a job for the queue: who asked and where the answer goes
(`Origin`), and the lookups every job sub-command shares: models and data sets named by the
user, resolved within the requesting workspace only.

Each job kind's bot module (`bot.kinds`) turns its request into the engine's params dataclass
with these; `Origin.job` wraps the params in a `JobCreate` with the kind's priority.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.grammar import CommandError
from bot.store import BotStore
from engine.kinds import get_kind
from engine.registry import builtin_models
from storage import datasets, model_records
from storage.tables import DatasetPublic, JobCreate, JobPublic, ModelPublic


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
    #: hub ids this request may name as a model: the admin's `LMOPS_HUB_MODELS`
    hub_models: frozenset[str] = frozenset()
    #: Slack's id of the request (a slash command's `trigger_id`): a replay carries the same
    trigger_id: str | None = None

    def job(self, kind: str, params: Any, key: str | None) -> JobCreate:
        """A job of `kind` with its params object; `key` makes enqueueing it twice return the
        first job."""
        return JobCreate(workspace_id=self.workspace_id, idempotency_key=key,
                         team_id=self.team_id, channel_id=self.channel_id, user_id=self.user_id,
                         thread_ts=self.thread_ts, response_url=self.response_url,
                         **get_kind(kind).job_fields(params))


def job_view(job: JobPublic) -> dict[str, Any]:
    """A job as the job blocks and the kinds' presenters take it (`JobPublic.to_json()`), with
    the data set named by its file, not its path."""
    view = job.to_json()
    params = dict(view.get("params") or {})
    if params.get("data") and not params.get("dataset"):
        params["dataset"] = Path(str(params["data"])).stem
    view["params"] = params
    return view


async def resolve_model(store: BotStore, origin: Origin, name: str) -> tuple[str, str | None]:
    """`(name, task)` of a built-in model, a model of this workspace, or a hub id an admin
    allowed (`LMOPS_HUB_MODELS`; task None). Folders and other hub ids are for the CLI: a name
    with a `/` would make the worker read a folder or try the hub."""
    if name in builtin_tasks():
        return name, builtin_tasks()[name]
    found: ModelPublic | None = await store.run(model_records.find_model,
                                                workspace_id=origin.workspace_id, ref=name,
                                                bare_ids=False)
    if found is not None:
        return found.name, found.task
    if name in origin.hub_models:
        return name, None
    if "/" in name:
        raise CommandError(f"there is no model {name!r} here: Slack takes the models "
                           "`/lm models` lists (hub ids and folders are for the CLI)")
    raise CommandError(f"there is no model {name!r} here; `/lm models` lists them")


async def resolve_dataset(store: BotStore, workspace_id: int, ref: str) -> DatasetPublic:
    """A data set of this workspace whose file is still there: `#12` is the data set with id
    12 and only that one, any other word a name (a data set named "12" is `12`, never `#12`)."""
    found: DatasetPublic | None = await store.find(datasets.get_dataset,
                                                   workspace_id=workspace_id, ref=ref,
                                                   bare_ids=False)
    if found is None:
        hint = f" (the data set with id {ref} is `#{ref}`)" if ref.isascii() and \
            ref.isdigit() else ""
        raise CommandError(f"there is no data set {ref!r} here{hint}; `/lm datasets` lists "
                           "them (upload a CSV, TSV, JSONL or JSON file to add one)")
    if not Path(found.stored_path).is_file():
        raise CommandError(f"the file of data set {found.name!r} is missing; upload it again")
    return found


def button_dataset(value: str) -> str:
    """The data set a card's button names: its value is the id (`#12`, or `12` on cards
    posted before ids carried the `#`), never a name."""
    digits = value.removeprefix("#")
    if not (digits.isascii() and digits.isdigit()):
        raise CommandError("that button names no data set; `/lm datasets` lists them")
    return f"#{digits}"


def params_or_error(cls: type, **values: Any) -> Any:
    """The engine's params object, or a `CommandError` with its validation message."""
    try:
        return cls(**values)
    except (ValueError, TypeError) as error:
        raise CommandError(str(error)) from None
