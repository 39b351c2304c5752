"""Events: mentions of the bot and DMs become chat jobs answered in a thread; files shared in
a channel the bot is in (or in a DM) become data sets. Bolt acknowledges events before these
listeners run.

Slack sends a mention in a channel twice (`message` and `app_mention`) and retries what it
thinks was lost; the chat job's idempotency key is the message itself (team, channel, ts), so
neither makes a second job. A file is handled once, whichever event names it first.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import error_blocks, fallback_text
from bot.command_text import from_slack
from bot.commands import CommandError
from bot.job_requests import Origin
from bot.kinds.chat import chat_params
from bot.runtime import BotRuntime
from bot.uploads import SharedFile, handle_file

log = logging.getLogger(__name__)
_MENTION = re.compile(r"<@[UW][A-Z0-9_]+(?:\|[^>]*)?>")


def _origin(context: AsyncBoltContext, event: dict[str, Any], channel: str | None,
            thread_ts: str | None) -> Origin:
    return Origin(team_id=context["lm_team"], workspace_id=context["lm_workspace_id"],
                  user_id=event.get("user") or event.get("user_id") or "", channel_id=channel,
                  thread_ts=thread_ts)


async def _chat(rt: BotRuntime, client: AsyncWebClient, context: AsyncBoltContext,
                event: dict[str, Any]) -> None:
    channel, ts = event.get("channel"), event.get("ts")
    thread_ts = event.get("thread_ts") or ts
    origin = _origin(context, event, channel, thread_ts)
    text = from_slack(_MENTION.sub(" ", event.get("text") or "")).strip()
    key = f"{origin.team_id}:chat:{channel}:{ts}"
    try:
        params = await chat_params(rt.store, origin, text, None)
        await rt.store.enqueue(origin.job("chat", params, key), exact=False)
    except CommandError as error:
        blocks = error_blocks(error.message)
        await client.chat_postMessage(channel=channel or "", thread_ts=thread_ts, blocks=blocks,
                                      text=fallback_text(blocks))


async def _files(rt: BotRuntime, client: AsyncWebClient, context: AsyncBoltContext,
                 event: dict[str, Any]) -> None:
    channel = event.get("channel")
    is_dm = event.get("channel_type") == "im" or str(channel or "").startswith("D")
    thread_ts = event.get("thread_ts") or event.get("ts")
    origin = _origin(context, event, channel, thread_ts)
    for file in event.get("files") or []:
        if file.get("user") and file.get("user") == context.bot_user_id:
            continue
        await handle_file(rt, client, origin, SharedFile(file, thread_ts, is_dm))


def _share_ts(file: dict[str, Any], channel: str) -> str | None:
    for scope in ("public", "private"):
        shares = ((file.get("shares") or {}).get(scope) or {}).get(channel) or []
        if shares:
            return str(shares[0].get("ts"))
    return None


def install(app: AsyncApp, rt: BotRuntime) -> None:
    """Register the event listeners."""

    @app.event("app_mention")
    async def mention(event: dict[str, Any], context: AsyncBoltContext,
                      client: AsyncWebClient) -> None:
        await _chat(rt, client, context, event)

    @app.event("message")
    async def message(event: dict[str, Any], context: AsyncBoltContext,
                      client: AsyncWebClient) -> None:
        subtype = event.get("subtype")
        if event.get("files") and subtype in (None, "file_share"):
            await _files(rt, client, context, event)
        elif subtype is None and not event.get("bot_id") and event.get("channel_type") == "im":
            await _chat(rt, client, context, event)

    @app.event("file_shared")
    async def file_shared(event: dict[str, Any], context: AsyncBoltContext,
                          client: AsyncWebClient) -> None:
        file_id, channel = event.get("file_id"), event.get("channel_id") or ""
        if not file_id or f"{context['lm_team']}:file:{file_id}" in rt.seen:
            return
        try:
            file = (await client.files_info(file=file_id))["file"]
        except SlackApiError as error:
            log.warning("files.info %s failed: %s", file_id, error.response.get("error"))
            return
        if file.get("user") == context.bot_user_id:
            return
        is_dm = channel.startswith("D")
        origin = _origin(context, event, channel, None)
        await handle_file(rt, client, origin, SharedFile(file, _share_ts(file, channel), is_dm))
