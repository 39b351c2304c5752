"""The `/lm` sub-commands answered in the acknowledgement: lists, one job, help, and the quick
state changes (cancel, promote, access). Each takes the runtime, the requester and the parsed
command and returns Block Kit blocks; a `CommandError` becomes a short error message.

State changes are recorded in the workspace's audit log.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from bot.blocks import (
    access_blocks,
    datasets_blocks,
    job_status_blocks,
    jobs_blocks,
    models_blocks,
)
from bot.blocks_base import Block, section
from bot.commands import (
    AccessCommand,
    CancelCommand,
    Command,
    CommandError,
    JobCommand,
    PromoteCommand,
)
from bot.help import help_blocks
from bot.job_requests import Origin, builtin_tasks, job_view
from bot.mrkdwn import code, mention
from bot.runtime import BotRuntime
from engine.registry import BUILTIN_NAMES, builtin_models

Answer = Callable[[BotRuntime, Origin, Any], Awaitable[list[Block]]]


@functools.cache
def _builtin_rows() -> tuple[dict[str, Any], ...]:
    return tuple({**spec.to_json(), "builtin": True} for spec in builtin_models())


async def _help(rt: BotRuntime, origin: Origin, command: Any) -> list[Block]:
    return help_blocks(getattr(command, "topic", None))


async def _models(rt: BotRuntime, origin: Origin, command: Command) -> list[Block]:
    rows = await rt.store.models(origin.workspace_id)
    own = [{**m, "promoted": bool(m.get("promoted_for"))} for m in rows]
    return models_blocks([*(dict(r) for r in _builtin_rows()), *own])


async def _datasets(rt: BotRuntime, origin: Origin, command: Command) -> list[Block]:
    return datasets_blocks(await rt.store.datasets(origin.workspace_id))


async def _jobs(rt: BotRuntime, origin: Origin, command: Command) -> list[Block]:
    return jobs_blocks([job_view(j) for j in await rt.store.list_jobs(origin.workspace_id)])


async def _job(rt: BotRuntime, origin: Origin, command: JobCommand) -> list[Block]:
    job = await rt.store.get_job(command.job_id, origin.workspace_id)
    if job is None:
        raise CommandError(f"there is no job #{command.job_id} here; `/lm jobs` lists them")
    return job_status_blocks(job_view(job))


async def _cancel(rt: BotRuntime, origin: Origin, command: CancelCommand) -> list[Block]:
    before = await rt.store.get_job(command.job_id, origin.workspace_id)
    if before is None:
        raise CommandError(f"there is no job #{command.job_id} here; `/lm jobs` lists them")
    if before["status"] not in ("todo", "doing"):
        return [section(f"Job #{command.job_id} has already ended ({before['status']}).")]
    job = await rt.store.cancel(command.job_id, origin.workspace_id) or before
    await rt.store.audit(origin.workspace_id, origin.user_id, "job.cancel", job["id"],
                         kind=job["kind"], status=job["status"])
    if job["status"] == "cancelled":
        return [section(f":no_entry_sign: Job #{job['id']} is cancelled.")]
    return [section(f":no_entry_sign: Job #{job['id']} stops at its next step.")]


async def _promote(rt: BotRuntime, origin: Origin, command: PromoteCommand) -> list[Block]:
    model = await rt.store.promote(origin.workspace_id, command.model)
    if model is None:
        if command.model in BUILTIN_NAMES or command.model in builtin_tasks():
            raise CommandError(f"{command.model!r} is built in; promote a model fine-tuned here "
                               "(`/lm models` lists them)")
        raise CommandError(f"there is no model {command.model!r} here; `/lm models` lists them")
    await rt.store.audit(origin.workspace_id, origin.user_id, "model.promote", model["name"],
                         task=model["task"])
    return [section(f":star: {code(model['name'])} is now this workspace's default "
                    f"{model['task']} model.")]


async def _access(rt: BotRuntime, origin: Origin, command: AccessCommand) -> list[Block]:
    ws = origin.workspace_id
    if command.action == "show":
        return access_blocks(await rt.store.roles(ws))
    user, role = command.user_id or "", command.role_name or ""
    current = await rt.store.role(ws, user)
    if user in rt.store.admins:
        raise CommandError(f"{user} is an admin through LMOPS_ADMINS; change that setting "
                           "instead")
    if command.action == "grant":
        if current == role:
            note = f"{mention(user)} is a {role} already."
        else:
            await rt.store.grant(ws, user, role, by=origin.user_id)
            await rt.store.audit(ws, origin.user_id, "role.grant", user, role=role,
                                 previous=current)
            note = f":white_check_mark: {mention(user)} is now a {role}."
    elif current != role:
        note = f"{mention(user)} is not a {role} (their role: {current})."
    else:
        await rt.store.revoke(ws, user)
        await rt.store.audit(ws, origin.user_id, "role.revoke", user, role=role)
        note = f":white_check_mark: {mention(user)} is no longer a {role}."
    return [section(note), *access_blocks(await rt.store.roles(ws))]


ANSWERS: dict[str, Answer] = {
    "help": _help, "models": _models, "datasets": _datasets, "jobs": _jobs, "job": _job,
    "cancel": _cancel, "promote": _promote, "access": _access,
}
