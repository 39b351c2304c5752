"""Events: mentions of the bot, DMs and follow-ups become chat jobs; files shared in a channel
the bot is in (or in a DM) become data sets. Bolt acknowledges events before these listeners run.

A mention is answered in its thread, a DM in the conversation (or in its thread, if it is in
one), and a message in a thread where the bot has replied, without a mention, in that thread.
The model gets the earlier turns of the thread, or of the DM's last half hour, as context
(`conversations.replies` / `conversations.history`, which need the `channels:history`,
`groups:history`, `im:history` scopes and the `message.*` events). "What can you do?" is
answered with what lmops does, without a model.

Slack sends a mention in a channel twice (`message` and `app_mention`) and retries what it
thinks was lost; the chat job's idempotency key is the message itself (team, channel, ts), so
neither makes a second job. A file is handled once, whichever event names it first.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import error_blocks, fallback_text
from bot.commands import CommandError
from bot.job_requests import Origin
from bot.kinds.chat import (
    MAX_TURNS,
    asks_what_i_do,
    capabilities_blocks,
    chat_params,
    conversation_turns,
    plain_text,
)
from bot.runtime import BotRuntime
from bot.uploads import SharedFile, handle_file

log = logging.getLogger(__name__)
MAX_PAGES = 5  # of a thread's replies, 200 each: the last turns of a long thread
DM_CONTEXT_SECONDS = 1800  # a DM's earlier messages within this are its context


def _origin(context: AsyncBoltContext, event: dict[str, Any], channel: str | None,
            thread_ts: str | None) -> Origin:
    return Origin(team_id=context["lm_team"], workspace_id=context["lm_workspace_id"],
                  user_id=event.get("user") or event.get("user_id") or "", channel_id=channel,
                  thread_ts=thread_ts)


def _is_dm(event: dict[str, Any]) -> bool:
    return event.get("channel_type") == "im" or str(event.get("channel") or "").startswith("D")


def _in_thread(event: dict[str, Any]) -> bool:
    return bool(event.get("thread_ts")) and event.get("thread_ts") != event.get("ts")


async def _earlier(client: AsyncWebClient, context: AsyncBoltContext, event: dict[str, Any]
                   ) -> tuple[list[dict[str, str]], bool]:
    """The turns before this message (its thread's, or the DM's last half hour) and whether the
    bot replied among them; none when Slack won't say."""
    channel, ts = str(event.get("channel") or ""), str(event.get("ts") or "")
    messages: list[dict[str, Any]] = []
    try:
        if _in_thread(event):
            cursor = None
            for _ in range(MAX_PAGES):
                page = await client.conversations_replies(channel=channel, ts=event["thread_ts"],
                                                          limit=200, cursor=cursor)
                messages += page.get("messages") or []
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        else:
            seconds, _, fraction = ts.partition(".")
            page = await client.conversations_history(
                channel=channel, latest=ts, limit=2 * MAX_TURNS,
                oldest=f"{int(seconds or 0) - DM_CONTEXT_SECONDS}.{fraction or '0'}")
            messages = list(reversed(page.get("messages") or []))
    except (SlackApiError, ValueError) as error:
        reason = error.response.get("error") if isinstance(error, SlackApiError) else error
        log.warning("reading the conversation before %s in %s failed: %s", ts, channel, reason)
        return [], False
    return conversation_turns(messages, context.bot_user_id, context.bot_id, before=ts)


async def _chat(rt: BotRuntime, client: AsyncWebClient, context: AsyncBoltContext,
                event: dict[str, Any], follow_up: bool = False) -> None:
    channel, ts = event.get("channel"), event.get("ts")
    is_dm = _is_dm(event)
    thread_ts = event.get("thread_ts") or (None if is_dm else ts)
    origin = _origin(context, event, channel, thread_ts)
    text = plain_text(event.get("text") or "", context.bot_user_id)
    history: list[dict[str, str]] = []
    if _in_thread(event) or is_dm:
        history, replied = await _earlier(client, context, event)
        if follow_up and not replied:
            return  # a thread the bot is not part of
    try:
        if not follow_up and asks_what_i_do(text):
            if rt.seen.add(f"{origin.team_id}:capabilities:{channel}:{ts}"):
                blocks = capabilities_blocks()
                await client.chat_postMessage(channel=channel or "", thread_ts=thread_ts,
                                              blocks=blocks, text=fallback_text(blocks))
            return
        params = await chat_params(rt.store, origin, text, None, history)
        key = f"{origin.team_id}:chat:{channel}:{ts}"
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
        elif subtype not in (None, "thread_broadcast") or event.get("bot_id") or \
                event.get("user") in (None, context.bot_user_id):
            return  # edits, deletions, joins, bots (the bot itself too)
        elif _is_dm(event):
            await _chat(rt, client, context, event)
        elif _in_thread(event) and f"<@{context.bot_user_id}" not in (event.get("text") or ""):
            await _chat(rt, client, context, event, follow_up=True)  # a mention: app_mention

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
