"""Button clicks: Cancel (job status messages), Promote (fine-tune results), Fine-tune and
Evaluate (data set reports). Each is acknowledged at once; the work follows, and the clicker
hears the outcome in an ephemeral message. The authorization middleware has checked the role.

A double click (or two people clicking) never starts two jobs: a button's job is keyed by the
message, the button and its value.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.answers import ANSWERS
from bot.blocks import ACTION_CANCEL, ACTION_EVAL, ACTION_FINETUNE, ACTION_PROMOTE, error_blocks
from bot.blocks_base import Block, section
from bot.commands import CancelCommand, EvalCommand, FinetuneCommand, PromoteCommand
from bot.handlers import enqueue_command, ephemeral, failure_blocks
from bot.jobs import Origin, default_eval_model, resolve_dataset
from bot.mrkdwn import code, mention
from bot.runtime import BotRuntime


def _value(body: dict[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value") or "")


def origin_of(body: dict[str, Any], context: AsyncBoltContext) -> Origin:
    """Who clicked, and where: jobs started from a message in a thread report in that thread."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    return Origin(team_id=context["lm_team"], workspace_id=context["lm_workspace_id"],
                  user_id=(body.get("user") or {}).get("id", ""), channel_id=channel,
                  thread_ts=message.get("thread_ts") or container.get("thread_ts"),
                  response_url=body.get("response_url"))


def _button_key(origin: Origin, body: dict[str, Any], action_id: str) -> str:
    container = body.get("container") or {}
    return (f"{origin.team_id}:btn:{origin.channel_id}:{container.get('message_ts')}:"
            f"{action_id}:{_value(body)}")


async def _say(respond: AsyncRespond, blocks: list[Block]) -> None:
    await respond(**ephemeral(blocks), replace_original=False)


async def _start(rt: BotRuntime, body: dict[str, Any], context: AsyncBoltContext,
                 respond: AsyncRespond, action_id: str) -> None:
    origin = origin_of(body, context)
    try:
        if action_id == ACTION_FINETUNE:
            command: FinetuneCommand | EvalCommand = FinetuneCommand(dataset=_value(body))
        else:
            dataset = await resolve_dataset(rt.store, origin.workspace_id, _value(body))
            model = await default_eval_model(rt.store, origin.workspace_id, dataset["task"])
            command = EvalCommand(model=model, dataset=str(dataset["id"]))
        job, created = await enqueue_command(rt, origin, command,
                                             _button_key(origin, body, action_id))
    except Exception as error:  # noqa: BLE001 (every failure becomes one short message)
        await _say(respond, failure_blocks(error))
        return
    what = "Fine-tune" if action_id == ACTION_FINETUNE else "Evaluation"
    note = (f":hourglass_flowing_sand: {what} queued as job #{job['id']}." if created
            else f"That was started already: job #{job['id']} ({job['status']}).")
    await _say(respond, [section(note)])


def install(app: AsyncApp, rt: BotRuntime) -> None:
    """Register the button listeners."""

    @app.action(ACTION_CANCEL)
    async def cancel(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext,
                     respond: AsyncRespond) -> None:
        await ack()
        try:
            command = CancelCommand(job_id=int(_value(body).removeprefix("#")))
            blocks = await ANSWERS["cancel"](rt, origin_of(body, context), command)
        except ValueError:
            blocks = error_blocks(f"{_value(body)!r} is not a job")
        except Exception as error:  # noqa: BLE001
            blocks = failure_blocks(error)
        await _say(respond, blocks)

    @app.action(ACTION_PROMOTE)
    async def promote(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext,
                      respond: AsyncRespond, client: AsyncWebClient) -> None:
        await ack()
        origin = origin_of(body, context)
        try:
            await ANSWERS["promote"](rt, origin, PromoteCommand(model=_value(body)))
        except Exception as error:  # noqa: BLE001
            await _say(respond, failure_blocks(error))
            return
        message = body.get("message") or {}
        thread = message.get("thread_ts") or message.get("ts")
        text = (f":star: {mention(origin.user_id)} made {code(_value(body))} this workspace's "
                "default model for its task.")
        await client.chat_postMessage(channel=origin.channel_id, thread_ts=thread, text=text,
                                      blocks=[section(text)])

    @app.action(ACTION_FINETUNE)
    async def finetune(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext,
                       respond: AsyncRespond) -> None:
        await ack()
        await _start(rt, body, context, respond, ACTION_FINETUNE)

    @app.action(ACTION_EVAL)
    async def evaluate(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext,
                       respond: AsyncRespond) -> None:
        await ack()
        await _start(rt, body, context, respond, ACTION_EVAL)
