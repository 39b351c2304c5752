"""Button clicks: Cancel (job status messages) and Promote (fine-tune results) here, and the
way a job kind's own buttons (Fine-tune, Evaluate on a data-set card: `bot.kinds`) start a job.
Each is acknowledged at once; the work follows, and the clicker hears the outcome in an
ephemeral message. The authorization middleware has checked the role.

A double click (or two people clicking) never starts two jobs: a button's job is keyed by the
message, the button and its value.

Each listener runs only for a request the middleware authorized for it (`bot.auth.checked`),
and acts for the user the middleware checked (`context.user_id`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.answers import ANSWERS
from bot.auth import checked
from bot.blocks import ACTION_CANCEL, ACTION_PROMOTE, fallback_text
from bot.blocks_base import Block, context, section
from bot.commands import CancelCommand, PromoteCommand, job_id_of
from bot.handlers import enqueue_command, ephemeral, failure_blocks
from bot.job_requests import Origin
from bot.kinds import JOB_SUBCOMMANDS, JobRequest
from bot.mrkdwn import code, mention
from bot.runtime import BotRuntime
from engine.registry import hub_models

log = logging.getLogger(__name__)


def button_value(body: dict[str, Any]) -> str:
    """The value of the clicked button."""
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value") or "")


def origin_of(body: dict[str, Any], context: AsyncBoltContext) -> Origin:
    """Who clicked, and where: jobs started from a message in a thread report in that thread."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    return Origin(team_id=context["lm_team"], workspace_id=context["lm_workspace_id"],
                  user_id=context.user_id or "", channel_id=channel,
                  thread_ts=message.get("thread_ts") or container.get("thread_ts"),
                  response_url=body.get("response_url"),
                  hub_models=hub_models(context["lm"].settings.lmops_hub_models))


def _button_key(origin: Origin, body: dict[str, Any], action_id: str) -> str:
    container = body.get("container") or {}
    return (f"{origin.team_id}:btn:{origin.channel_id}:{container.get('message_ts')}:"
            f"{action_id}:{button_value(body)}")


async def _say(respond: AsyncRespond, blocks: list[Block]) -> None:
    await respond(**ephemeral(blocks), replace_original=False)


async def say_failure(respond: AsyncRespond, error: Exception) -> None:
    """Tell the clicker, in one short line, why their click did nothing."""
    await _say(respond, failure_blocks(error))


async def start_from_button(rt: BotRuntime, body: dict[str, Any], context: AsyncBoltContext,
                            respond: AsyncRespond, what: str, request: JobRequest) -> None:
    """Enqueue the job of `request` for a button click; the clicker hears the job's number
    (or that a double click started it already, or why it can't run). The job keeps no
    response_url: a button's names the message the button is on, which must stay."""
    origin = replace(origin_of(body, context), response_url=None)
    action_id = ((body.get("actions") or [{}])[0]).get("action_id", "")
    try:
        job, created = await enqueue_command(rt, origin, request,
                                             _button_key(origin, body, action_id))
    except Exception as error:  # noqa: BLE001 (every failure becomes one short message)
        await say_failure(respond, error)
        return
    note = (f":hourglass_flowing_sand: {what} queued as job #{job.id}." if created
            else f"That was started already: job #{job.id} ({job.status}).")
    await _say(respond, [section(note)])


async def _promoted(client: AsyncWebClient, origin: Origin, message: dict[str, Any]) -> None:
    """The clicked message without its Promote button: "Promoted by @user" in its place."""
    blocks: list[Block] = []
    for block in message.get("blocks") or []:
        promote = block.get("type") == "actions" and any(
            e.get("action_id") == ACTION_PROMOTE for e in block.get("elements") or [])
        blocks.append(context([f":star: Promoted by {mention(origin.user_id)}"]) if promote
                      else block)
    if not message.get("ts") or blocks == message.get("blocks"):
        return
    try:
        await client.chat_update(channel=origin.channel_id, ts=message["ts"], blocks=blocks,
                                 text=fallback_text(blocks))
    except SlackApiError as error:
        log.warning("removing the Promote button failed: %s", error.response.get("error"))


def install(app: AsyncApp, rt: BotRuntime) -> None:
    """Register the button listeners (Cancel, Promote, and each job kind's)."""

    @app.action(ACTION_CANCEL, middleware=[checked(ACTION_CANCEL)])
    async def cancel(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext,
                     respond: AsyncRespond) -> None:
        await ack()
        try:  # a job of another workspace is "no job #N here", as in `/lm cancel N`
            command = CancelCommand(job_id=job_id_of(button_value(body)))
            blocks = await ANSWERS["cancel"](rt, origin_of(body, context), command)
        except Exception as error:  # noqa: BLE001 (every failure becomes one short message)
            blocks = failure_blocks(error)
        await _say(respond, blocks)

    @app.action(ACTION_PROMOTE, middleware=[checked(ACTION_PROMOTE)])
    async def promote(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext,
                      respond: AsyncRespond, client: AsyncWebClient) -> None:
        await ack()
        origin = origin_of(body, context)
        try:
            await ANSWERS["promote"](rt, origin, PromoteCommand(model=button_value(body)))
        except Exception as error:  # noqa: BLE001
            await _say(respond, failure_blocks(error))
            return
        message = body.get("message") or {}
        thread = message.get("thread_ts") or message.get("ts")
        text = (f":star: {mention(origin.user_id)} made {code(button_value(body))} this workspace's "
                "default model for its task.")
        await client.chat_postMessage(channel=origin.channel_id, thread_ts=thread, text=text,
                                      blocks=[section(text)])
        await _promoted(client, origin, message)

    for sub in JOB_SUBCOMMANDS.values():  # each job kind's own buttons
        if sub.install is not None:
            sub.install(app, rt)
