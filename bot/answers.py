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
    JobsCommand,
    PromoteCommand,
)
from bot.help import help_blocks
from bot.job_requests import Origin, builtin_tasks, job_view
from bot.mrkdwn import code, mention
from bot.runtime import BotRuntime
from engine.kinds import all_kinds
from engine.registry import BUILTIN_NAMES, builtin_models
from storage import accounts, datasets, model_records, queue
from storage.tables import JobPublic

Answer = Callable[[BotRuntime, Origin, Any], Awaitable[list[Block]]]


@functools.cache
def _builtin_rows() -> tuple[dict[str, Any], ...]:
    return tuple({**spec.to_json(), "builtin": True} for spec in builtin_models())


def _request(origin: Origin) -> dict[str, Any]:
    """The audit details that name the request (its trigger id, so a replay is recognised)."""
    return {"trigger": origin.trigger_id} if origin.trigger_id else {}


async def _help(rt: BotRuntime, origin: Origin, command: Any) -> list[Block]:
    return help_blocks(getattr(command, "topic", None))


async def _models(rt: BotRuntime, origin: Origin, command: Command) -> list[Block]:
    own = await rt.store.run(model_records.list_models, workspace_id=origin.workspace_id)
    return models_blocks([*(dict(r) for r in _builtin_rows()), *(m.to_json() for m in own)])


async def _datasets(rt: BotRuntime, origin: Origin, command: Command) -> list[Block]:
    rows = await rt.store.run(datasets.list_datasets, workspace_id=origin.workspace_id)
    return datasets_blocks([d.to_json() for d in rows])


async def _jobs(rt: BotRuntime, origin: Origin, command: JobsCommand) -> list[Block]:
    """The long jobs (fine-tunes, evaluations); the predictions lane's quick calls (classify,
    chat) only with `all`."""
    kinds = all_kinds()
    hidden = [] if command.all_jobs else \
        [name for name, spec in kinds.items() if spec.lane == "predictions"]
    shown = [name for name in kinds if name not in hidden]
    jobs = await rt.store.run(queue.list_jobs, workspace_id=origin.workspace_id,
                              kinds=shown if hidden else None, limit=25)
    return jobs_blocks([job_view(j) for j in jobs],
                       hidden=[kinds[name].title.lower() for name in hidden])


async def _find_job(rt: BotRuntime, origin: Origin, job_id: int) -> JobPublic:
    job = await rt.store.find(queue.get_job, job_id=job_id, workspace_id=origin.workspace_id)
    if job is None:
        raise CommandError(f"there is no job #{job_id} here; `/lm jobs` lists them")
    return job


async def _job(rt: BotRuntime, origin: Origin, command: JobCommand) -> list[Block]:
    return job_status_blocks(job_view(await _find_job(rt, origin, command.job_id)))


async def _cancel(rt: BotRuntime, origin: Origin, command: CancelCommand) -> list[Block]:
    before = await _find_job(rt, origin, command.job_id)
    if before.status not in ("todo", "doing"):
        return [section(f"Job #{command.job_id} has already ended ({before.status}).")]
    job: JobPublic = await rt.store.find(queue.request_cancel, job_id=command.job_id,
                                         workspace_id=origin.workspace_id) or before
    await rt.store.audit(origin.workspace_id, origin.user_id, "job.cancel", job.id,
                         kind=job.kind, status=job.status, **_request(origin))
    if job.status == "cancelled":
        return [section(f":no_entry_sign: Job #{job.id} is cancelled.")]
    return [section(f":no_entry_sign: Job #{job.id} stops at its next step.")]


async def _promote(rt: BotRuntime, origin: Origin, command: PromoteCommand) -> list[Block]:
    named = await rt.store.run(model_records.find_model, workspace_id=origin.workspace_id,
                               ref=command.model, bare_ids=False)  # a name, never an id
    model = await rt.store.promote(origin.workspace_id, named.name) if named else None
    if model is None:
        if command.model in BUILTIN_NAMES or command.model in builtin_tasks():
            raise CommandError(f"{command.model!r} is built in; promote a model fine-tuned here "
                               "(`/lm models` lists them)")
        raise CommandError(f"there is no model {command.model!r} here; `/lm models` lists them")
    await rt.store.audit(origin.workspace_id, origin.user_id, "model.promote", model.name,
                         task=model.task, **_request(origin))
    return [section(f":star: {code(model.name)} is now this workspace's default "
                    f"{model.task} model.")]


async def _access(rt: BotRuntime, origin: Origin, command: AccessCommand) -> list[Block]:
    ws = origin.workspace_id
    if command.action == "show":
        return await _roles(rt, ws)
    user, role = command.user_id or "", command.role_name or ""
    current = await rt.store.role(ws, user)
    if user in rt.store.admins:
        raise CommandError(f"{user} is an admin through LMOPS_ADMINS; change that setting "
                           "instead")
    if command.action == "grant":
        if current == role:
            note = f"{mention(user)} is a {role} already."
        else:
            await rt.store.run(accounts.set_role, workspace_id=ws, slack_user_id=user,
                               role=role, granted_by=origin.user_id)
            await rt.store.audit(ws, origin.user_id, "role.grant", user, role=role,
                                 previous=current, **_request(origin))
            note = f":white_check_mark: {mention(user)} is now a {role}."
    elif current != role:
        note = f"{mention(user)} is not a {role} (their role: {current})."
    else:
        await rt.store.run(accounts.revoke_role, workspace_id=ws, slack_user_id=user)
        await rt.store.audit(ws, origin.user_id, "role.revoke", user, role=role,
                             **_request(origin))
        note = f":white_check_mark: {mention(user)} is no longer a {role}."
    return [section(note), *await _roles(rt, ws)]


async def _roles(rt: BotRuntime, workspace_id: int) -> list[Block]:
    return access_blocks([u.to_json() for u in await rt.store.roles(workspace_id)])


ANSWERS: dict[str, Answer] = {
    "help": _help, "models": _models, "datasets": _datasets, "jobs": _jobs, "job": _job,
    "cancel": _cancel, "promote": _promote, "access": _access,
}
