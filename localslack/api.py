"""Slack Web API methods over a :class:`~localslack.state.Workspace`.

Each method is a plain function ``(workspace, params) -> dict`` that returns the response
without ``ok`` or raises :class:`ApiError` with Slack's error code; the server adds
``{"ok": ...}`` and HTTP around it. Acting identity is always the bot (the only token kind that
reaches these methods).
"""

from __future__ import annotations

from typing import Any

from .api_base import METHODS, ApiError, Params, _channel, method
from .models import JSON, Message
from .state import Workspace

__all__ = ["METHODS", "ApiError", "Params", "method"]


def _blocks(p: Params) -> tuple[Any, Any]:
    blocks = p.json("blocks", error="invalid_blocks")
    if blocks is not None and not (isinstance(blocks, list)
                                   and all(isinstance(b, dict) and "type" in b for b in blocks)):
        raise ApiError("invalid_blocks")
    attachments = p.json("attachments", error="invalid_attachments")
    if attachments is not None and not isinstance(attachments, list):
        raise ApiError("invalid_attachments")
    return blocks, attachments


def _own_message(ws: Workspace, channel: str, ts: str, refusal: str) -> Message:
    message = ws.get_message(channel, ts)
    if message is None:
        raise ApiError("message_not_found")
    if message.bot_id != ws.bot_id:
        raise ApiError(refusal)
    return message


def _chunk_text(p: Params) -> str:
    text = p.str("markdown_text") or ""
    for chunk in p.json("chunks") or []:
        if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
            text += str(chunk.get("text", ""))
    return text


@method("auth.test")
def auth_test(ws: Workspace, p: Params) -> JSON:
    bot = ws.get_user(ws.bot_user_id)
    return {"url": f"https://{ws.team.domain}.slack.com/", "team": ws.team.name,
            "user": bot.name if bot else "bot", "team_id": ws.team.id,
            "user_id": ws.bot_user_id, "bot_id": ws.bot_id, "is_enterprise_install": False}


@method("chat.postMessage")
def chat_post_message(ws: Workspace, p: Params) -> JSON:
    channel = _channel(ws, p)
    blocks, attachments = _blocks(p)
    text = p.str("text") or ""
    if not text and not blocks and not attachments:
        raise ApiError("no_text")
    message = ws.post_message(
        channel, text=text, user=ws.bot_user_id, bot_id=ws.bot_id, app_id=ws.app_id,
        blocks=blocks, attachments=attachments, thread_ts=p.str("thread_ts"),
        reply_broadcast=p.bool("reply_broadcast"), metadata=p.json("metadata"),
        username=p.str("username"), icon_emoji=p.str("icon_emoji"))
    return {"channel": channel, "ts": message.ts, "message": ws.message_json(message)}


@method("chat.update")
def chat_update(ws: Workspace, p: Params) -> JSON:
    channel = _channel(ws, p)
    ts = p.str("ts", required=True, error="message_not_found")
    _own_message(ws, channel, ts, "cant_update_message")
    blocks, attachments = _blocks(p)
    text = p.str("text")
    if text is None and blocks is None and attachments is None:
        raise ApiError("no_text")
    changes: JSON = {}
    if blocks is not None:
        changes["blocks"] = blocks or None
    if attachments is not None:
        changes["attachments"] = attachments or None
    if "metadata" in p.values:
        changes["metadata"] = p.json("metadata")
    message = ws.update_message(channel, ts, text=text, editor=ws.bot_user_id, **changes)
    return {"channel": channel, "ts": ts, "text": message.text,
            "message": ws.message_json(message)}


@method("chat.delete")
def chat_delete(ws: Workspace, p: Params) -> JSON:
    channel = _channel(ws, p)
    ts = p.str("ts", required=True, error="message_not_found")
    _own_message(ws, channel, ts, "cant_delete_message")
    ws.delete_message(channel, ts)
    return {"channel": channel, "ts": ts}


@method("chat.postEphemeral")
def chat_post_ephemeral(ws: Workspace, p: Params) -> JSON:
    channel = _channel(ws, p)
    user = p.str("user", required=True, error="user_not_found")
    if ws.get_user(user) is None:
        raise ApiError("user_not_found")
    found = ws.get_channel(channel)
    if found is None or user not in found.members:
        raise ApiError("user_not_in_channel")
    blocks, attachments = _blocks(p)
    text = p.str("text") or ""
    if not text and not blocks and not attachments:
        raise ApiError("no_text")
    ephemeral = ws.post_ephemeral(channel, user, text=text, blocks=blocks,
                                  attachments=attachments, thread_ts=p.str("thread_ts"))
    return {"message_ts": ephemeral.ts}


@method("chat.startStream")
def chat_start_stream(ws: Workspace, p: Params) -> JSON:
    channel = _channel(ws, p)
    thread_ts = p.str("thread_ts", required=True)
    message = ws.post_message(channel, text=_chunk_text(p), user=ws.bot_user_id,
                              bot_id=ws.bot_id, app_id=ws.app_id, thread_ts=thread_ts,
                              streaming=True)
    return {"channel": channel, "ts": message.ts}


def _streaming(ws: Workspace, p: Params) -> tuple[str, str]:
    channel = _channel(ws, p)
    ts = p.str("ts", required=True)
    message = _own_message(ws, channel, ts, "cant_update_message")
    if not message.streaming:
        raise ApiError("message_not_in_streaming_state")
    return channel, ts


@method("chat.appendStream")
def chat_append_stream(ws: Workspace, p: Params) -> JSON:
    channel, ts = _streaming(ws, p)
    ws.update_message(channel, ts, append_text=_chunk_text(p))
    return {"channel": channel, "ts": ts}


@method("chat.stopStream")
def chat_stop_stream(ws: Workspace, p: Params) -> JSON:
    channel, ts = _streaming(ws, p)
    blocks, _ = _blocks(p)
    changes: JSON = {"blocks": blocks} if blocks else {}
    if "metadata" in p.values:
        changes["metadata"] = p.json("metadata")
    message = ws.update_message(channel, ts, append_text=_chunk_text(p), streaming=False,
                                **changes)
    return {"channel": channel, "ts": ts, "message": ws.message_json(message)}


@method("files.getUploadURLExternal")
def files_get_upload_url_external(ws: Workspace, p: Params) -> JSON:
    filename = p.str("filename", required=True)
    length = p.int("length", -1)
    if length < 0:
        raise ApiError("invalid_arguments", response_metadata={
            "messages": ["[ERROR] missing required field: length"]})
    file = ws.create_file(filename, user=ws.bot_user_id, length=length,
                          alt_txt=p.str("alt_txt"))
    return {"upload_url": f"{ws.base_url}/upload/v1/{file.upload_id}", "file_id": file.id}


@method("files.completeUploadExternal")
def files_complete_upload_external(ws: Workspace, p: Params) -> JSON:
    entries = p.json("files")
    if not isinstance(entries, list) or not entries or not all(
            isinstance(e, dict) and e.get("id") for e in entries):
        raise ApiError("invalid_arguments", response_metadata={
            "messages": ["[ERROR] files must be a JSON list of {id, title}"]})
    files = [ws.complete_file(str(e["id"]), title=e.get("title")) for e in entries]
    targets: list[str] = []
    if p.str("channel_id"):
        targets.append(_channel(ws, Params({"channel": p.str("channel_id")})))
    for ref in (p.str("channels") or "").split(","):
        if ref:
            targets.append(_channel(ws, Params({"channel": ref})))
    for channel in targets:
        ws.post_message(channel, text=p.str("initial_comment") or "", user=ws.bot_user_id,
                        bot_id=ws.bot_id, app_id=ws.app_id, subtype="file_share",
                        thread_ts=p.str("thread_ts"), files=[f.id for f in files])
    return {"files": [ws.file_json(ws.get_file(f.id) or f) for f in files]}


@method("files.info")
def files_info(ws: Workspace, p: Params) -> JSON:
    file = ws.get_file(p.str("file", required=True, error="file_not_found"))
    if file is None:
        raise ApiError("file_not_found")
    return {"file": ws.file_json(file), "comments": [],
            "response_metadata": {"next_cursor": ""}}


from . import api_conversations  # noqa: F401  (registers conversations.*, users.*, reactions.*)
