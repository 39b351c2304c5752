"""The `/lm` listener: acknowledge at once, then do the work.

Read-only sub-commands and quick state changes are answered in the acknowledgement when the
database answers within `ANSWER_TIMEOUT` (else the ack says "working on it" and the answer
follows through `response_url`). Sub-commands that make jobs resolve their names and build
their params first (within the same timeout), so a request that can't run is acknowledged
with its reason instead of a promise; otherwise the ack is the kind's short note, the job is
enqueued afterwards, and its messages are the reporter's.

The authorization middleware (`bot.auth`) has parsed and authorized the command already.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.answers import ANSWERS
from bot.auth import COMMAND_KEY, checked
from bot.blocks import error_blocks, fallback_text
from bot.blocks_base import Block, section
from bot.commands import COMMAND, Command, CommandError
from bot.job_requests import Origin
from bot.kinds import JOB_SUBCOMMANDS, JobRequest, JobSubcommand
from bot.runtime import BotRuntime
from engine.errors import EngineError
from engine.kinds import get_kind
from engine.registry import hub_models
from storage import activity
from storage.errors import StorageError
from storage.tables import JobPublic

log = logging.getLogger(__name__)
ANSWER_TIMEOUT = 1.5


def ephemeral(blocks: list[Block]) -> dict[str, Any]:
    """Keyword arguments for `ack`/`respond` that show `blocks` to the requester only."""
    return {"text": fallback_text(blocks), "blocks": blocks, "response_type": "ephemeral"}


def queued_blocks(command: Command) -> list[Block]:
    """The acknowledgement of a command that makes a job (its kind's words)."""
    sub = JOB_SUBCOMMANDS.get(command.name)
    text = sub.queued(command) if sub and isinstance(command, JobRequest) else \
        ":hourglass_flowing_sand: Working on it…"
    return [section(text)]


async def prepare_job(rt: BotRuntime, origin: Origin, command: Command
                      ) -> tuple[JobSubcommand, Any, dict[str, Any]]:
    """The job a command makes: its sub-command, the engine's params object (names resolved
    in the workspace) and the details for the audit log. Raises `CommandError` when it can't run."""
    sub = JOB_SUBCOMMANDS.get(command.name)
    if sub is None or not isinstance(command, JobRequest):
        raise CommandError(f"{COMMAND} {command.name} makes no job")
    params, details = await sub.to_params(rt.store, origin, command)
    return sub, params, details


async def submit_job(rt: BotRuntime, origin: Origin, prepared: tuple[JobSubcommand, Any, dict],
                     key: str | None) -> tuple[Any, bool]:
    """Enqueue a prepared job; returns the job (the first one for a retry) and whether it is
    new."""
    sub, params, details = prepared
    job_in = origin.job(sub.kind, params, key)
    # predictions are the hot path: their "new" is not looked up (see BotStore.enqueue)
    exact = get_kind(sub.kind).lane != "predictions"
    job, created = await rt.store.enqueue(job_in, exact=exact)
    if created and sub.audited:
        await rt.store.audit(origin.workspace_id, origin.user_id, f"job.{sub.kind}", job.id,
                             **details)
    return job, created


async def enqueue_command(rt: BotRuntime, origin: Origin, command: Command,
                          key: str | None) -> tuple[Any, bool]:
    """Build the job of a command and enqueue it (see `prepare_job` and `submit_job`)."""
    return await submit_job(rt, origin, await prepare_job(rt, origin, command), key)


async def _submit_and_report(rt: BotRuntime, origin: Origin, prepared: Awaitable[Any],
                             key: str | None, respond: AsyncRespond) -> None:
    try:
        await submit_job(rt, origin, await prepared, key)
    except Exception as error:  # noqa: BLE001 (every failure becomes one short message)
        await respond(**ephemeral(failure_blocks(error)), replace_original=False)


async def start_job(rt: BotRuntime, ack: AsyncAck, respond: AsyncRespond, origin: Origin,
                    command: Command, key: str | None, timeout: float = ANSWER_TIMEOUT) -> None:
    """Acknowledge a job-making command: with its error when names don't resolve or the
    params don't validate (no promise that never comes), else with the kind's "queued" words;
    the job is enqueued after the acknowledgement. Should resolving take longer than
    `timeout`, the promise goes first and an error, if any, follows through `response_url`."""
    prepared = asyncio.ensure_future(prepare_job(rt, origin, command))
    try:
        await asyncio.wait_for(asyncio.shield(prepared), timeout)
    except TimeoutError:
        pass
    except Exception as error:  # noqa: BLE001 (every failure becomes one short message)
        await ack(**ephemeral(failure_blocks(error)))
        return
    await ack(**ephemeral(queued_blocks(command)))
    rt.spawn(_submit_and_report(rt, origin, prepared, key, respond), name="enqueue")


async def once(rt: BotRuntime, origin: Origin, work: Awaitable[list[Block]]) -> list[Block]:
    """`work`, unless a request with this trigger id ran already: a replayed `/lm access
    grant` (or cancel, promote) must not run twice. This process remembers the trigger ids it
    saw for an hour (Slack's signatures expire after five minutes), and the audit log, whose
    entries record the trigger id, covers other replicas and restarts."""
    key = f"{origin.team_id}:cmd:{origin.trigger_id}"
    if not rt.seen.add(key) or await _audited(rt, origin):
        if asyncio.iscoroutine(work):
            work.close()  # never started
        return [section("That request was handled already; a repeat of it changes nothing.")]
    return await work


async def _audited(rt: BotRuntime, origin: Origin) -> bool:
    entries = await rt.store.run(activity.list_audit, workspace_id=origin.workspace_id,
                                 actor=origin.user_id, limit=50)
    return any((entry.details or {}).get("trigger") == origin.trigger_id for entry in entries)


def failure_blocks(error: Exception) -> list[Block]:
    """One short message for a failure: ours in our words, anything else logged."""
    if isinstance(error, CommandError):
        return error_blocks(error.message)
    if isinstance(error, (StorageError, EngineError)):
        return error_blocks(str(error))
    log.error("a /lm request failed", exc_info=error)
    return error_blocks("something went wrong on our side; the bot's log has the details")


async def _blocks_or_error(work: Awaitable[list[Block]]) -> list[Block]:
    try:
        return await work
    except Exception as error:  # noqa: BLE001 (every failure becomes one short message)
        return failure_blocks(error)


async def answer(rt: BotRuntime, ack: AsyncAck, respond: AsyncRespond,
                 work: Awaitable[list[Block]], timeout: float = ANSWER_TIMEOUT) -> None:
    """Acknowledge with the answer `work` makes when it is ready within `timeout`; else ack
    that it is coming and send it through `response_url` when it is."""
    task = asyncio.ensure_future(_blocks_or_error(work))
    try:
        blocks = await asyncio.wait_for(asyncio.shield(task), timeout)
    except TimeoutError:
        await ack(**ephemeral([section(":hourglass_flowing_sand: Working on it…")]))

        async def later() -> None:
            await respond(**ephemeral(await task), replace_original=False)

        rt.spawn(later(), name="late-answer")
        return
    await ack(**ephemeral(blocks))


def install(app: AsyncApp, rt: BotRuntime) -> None:
    """Register the `/lm` listener."""

    @app.command(COMMAND, middleware=[checked(COMMAND_KEY)])
    async def lm(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext,
                 respond: AsyncRespond) -> None:
        error = context.get("lm_error")
        if error is not None:
            await ack(**ephemeral(error_blocks(error.message)))
            return
        command: Command = context["lm_command"]
        origin = Origin(team_id=context["lm_team"], workspace_id=context["lm_workspace_id"],
                        user_id=context.user_id or "", channel_id=body.get("channel_id"),
                        response_url=body.get("response_url"),
                        hub_models=hub_models(rt.settings.lmops_hub_models),
                        trigger_id=body.get("trigger_id") or None)
        if command.job_kind is not None:
            trigger = origin.trigger_id
            key = f"{origin.team_id}:cmd:{trigger}" if trigger else None
            await start_job(rt, ack, respond, origin, command, key)
            return
        work = ANSWERS[command.name](rt, origin, command)
        if command.changes_state and origin.trigger_id:
            work = once(rt, origin, work)
        await answer(rt, ack, respond, work)
