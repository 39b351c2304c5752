"""What the local page does, as the local user, and the live stream it listens to.

Sending, uploading, clicking and reacting go through the
:class:`~localslack.deliver.Deliverer`, so the app receives what Slack would send; the
outcome of a delivery comes back as ``{"ok": false, "error": "dispatch_failed"}`` (what Slack
shows when an app can't be reached) rather than as an HTTP error. ``stream`` turns
:meth:`Workspace.subscribe` notifications into Server-Sent Events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import PurePath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aiohttp import web

from . import payloads
from .deliver import Delivery
from .messages import WorkspaceError
from .models import JSON, Message
from .state import Workspace

if TYPE_CHECKING:
    from .web import WebUI

log = logging.getLogger(__name__)

STREAM_KINDS = frozenset({"message", "message_changed", "message_deleted", "reaction",
                          "ephemeral"})
HEARTBEAT_SECONDS = 15.0
COMMANDS = ("/lm",)


def to_slack_text(text: str, users: dict[str, str]) -> str:
    """What a Slack client sends for typed ``text``: ``&``, ``<``, ``>`` escaped and
    ``@name`` of a member turned into ``<@ID>``. ``users`` maps lower-case names to ids."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def mention(match: re.Match[str]) -> str:
        user_id = users.get(match.group(2).lower())
        return f"{match.group(1)}<@{user_id}>" if user_id else match.group()

    return re.sub(r"(^|[\s(])@([A-Za-z0-9._-]+)", mention, escaped)


def safe_filename(name: str) -> str:
    """An uploaded file's name without folders or characters that would break its URL."""
    base = PurePath(unquote(name).replace("\\", "/")).name
    cleaned = re.sub(r"[^\w.()+ -]", "_", base).strip(" .")
    return cleaned[:200] or "upload"


def message_web(ws: Workspace, message: Message) -> JSON:
    """A message as the page gets it: the Web API shape, ``channel``, and browser URLs of files."""
    out = ws.message_json(message)
    out["channel"] = message.channel
    for file in out.get("files", []):
        file["web_url"] = f"/web/files/{file['id']}/{file['name']}"
    return out


def _outcome(delivery: Delivery | None) -> web.Response:
    if delivery is not None and delivery.ok:
        return web.json_response({"ok": True, "status": delivery.status})
    status = delivery.status if delivery is not None else 0
    error = "operation_timeout" if status == 504 else "dispatch_failed"
    return web.json_response({"ok": False, "error": error, "status": status})


async def _body(request: web.Request) -> JSON:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"ok": false, "error": "invalid_json"}',
                                 content_type="application/json")
    return body


def _channel(ui: WebUI, ref: Any) -> str:
    channel = ui.ws.get_channel(str(ref or ""))
    if channel is None or ui.user not in channel.members:
        raise web.HTTPNotFound(text='{"ok": false, "error": "channel_not_found"}',
                               content_type="application/json")
    return channel.id


def _users(ws: Workspace) -> dict[str, str]:
    return {u.name.lower(): u.id for u in ws.list_users()}


async def _deliver(work: Any) -> Delivery | None:
    try:
        result = await work
    except RuntimeError as exc:  # nowhere to deliver to
        log.warning("%s", exc)
        return None
    return result[0] if isinstance(result, list) else result


async def message(request: web.Request, ui: WebUI) -> web.Response:
    """``{channel, text, thread_ts?}``: ``/lm ...`` is a slash command, anything else a message."""
    body = await _body(request)
    channel = _channel(ui, body.get("channel"))
    text = str(body.get("text") or "")
    thread_ts = str(body.get("thread_ts") or "") or None
    if not text.strip():
        return web.json_response({"ok": False, "error": "no_text"}, status=400)
    if text.startswith("/"):
        command, _, rest = text.strip().partition(" ")
        if command not in COMMANDS:
            return web.json_response({"ok": False, "error": "invalid_command", "message": (
                f"{command} is not a valid command. In Slack, all messages that start with "
                'the "/" character are interpreted as commands.')})
        text_out = to_slack_text(rest.strip(), _users(ui.ws))
        return _outcome(await _deliver(ui.deliver.slash_command(
            text_out, user=ui.user, channel=channel, command=command)))
    try:
        return _outcome(await _deliver(ui.deliver.message(
            to_slack_text(text, _users(ui.ws)), user=ui.user, channel=channel,
            thread_ts=thread_ts)))
    except WorkspaceError as exc:
        return web.json_response({"ok": False, "error": exc.error}, status=400)


async def upload(request: web.Request, ui: WebUI) -> web.Response:
    """A multipart form: ``file`` (one or more), ``channel``, ``thread_ts``, ``comment``;
    each file becomes a ``file_share`` message, delivered to the app as Slack would."""
    form = await request.post()
    channel = _channel(ui, form.get("channel"))
    thread_ts = str(form.get("thread_ts") or "") or None
    comment = to_slack_text(str(form.get("comment") or ""), _users(ui.ws))
    files = [f for f in form.getall("file", []) if isinstance(f, web.FileField)]
    if not files:
        return web.json_response({"ok": False, "error": "no_file"}, status=400)
    outcomes = []
    for field in files:
        data = field.file.read()
        try:
            delivery = await _deliver(ui.deliver.file_share(
                safe_filename(field.filename or ""), data, user=ui.user, channel=channel,
                initial_comment=comment, thread_ts=thread_ts))
        except WorkspaceError as exc:
            return web.json_response({"ok": False, "error": exc.error}, status=400)
        comment = ""
        outcomes.append(json.loads(_outcome(delivery).text or "{}"))
    failed = [o for o in outcomes if not o.get("ok")]
    return web.json_response(failed[0] if failed else {"ok": True, "files": len(files)})


async def action(request: web.Request, ui: WebUI) -> web.Response:
    """``{channel, message_ts, action_id, value?, block_id?}``: a click on a button."""
    body = await _body(request)
    channel = _channel(ui, body.get("channel"))
    value = body.get("value")
    try:
        delivery = await _deliver(ui.deliver.block_actions(
            str(body.get("action_id") or ""), message_ts=str(body.get("message_ts") or ""),
            user=ui.user, channel=channel, value=None if value is None else str(value),
            block_id=body.get("block_id") or None))
    except LookupError:
        return web.json_response({"ok": False, "error": "message_not_found"}, status=404)
    return _outcome(delivery)


async def reaction(request: web.Request, ui: WebUI) -> web.Response:
    """``{channel, ts, name}``: add the local user's reaction, or take it back."""
    body = await _body(request)
    channel = _channel(ui, body.get("channel"))
    ts, name = str(body.get("ts") or ""), str(body.get("name") or "").strip(":")
    found = ui.ws.get_message(channel, ts)
    if found is None or not re.fullmatch(r"[a-z0-9_+-]{1,64}", name):
        return web.json_response({"ok": False, "error": "invalid_reaction"}, status=400)
    mine = any(r.name == name and ui.user in r.users for r in found.reactions)
    if not mine:
        return _outcome(await _deliver(ui.deliver.reaction_added(
            name, ts=ts, user=ui.user, channel=channel)))
    message_now = ui.ws.remove_reaction(channel, ts, name, user=ui.user)
    event = {**payloads.reaction_added_event(ui.ws, reaction=name, user=ui.user,
                                             message=message_now),
             "type": "reaction_removed"}
    return _outcome(await _deliver(ui.deliver.event_callback(event)))


def stream_events(ui: WebUI, kind: str, data: JSON) -> list[JSON]:
    """What the page hears about one change: the message as it is now, or that it's gone."""
    ws, channel_id = ui.ws, str(data.get("channel") or "")
    channel = ws.get_channel(channel_id)
    if kind not in STREAM_KINDS or channel is None or ui.user not in channel.members:
        return []
    ts = str(data.get("ts") or "")
    if kind == "message_deleted":
        return [{"type": "deleted", "channel": channel_id, "ts": ts}]
    if kind == "ephemeral":
        if data.get("user") != ui.user:
            return []
        ephemeral = ws.find_ephemeral(ts)
        if ephemeral is None:
            return [{"type": "deleted", "channel": channel_id, "ts": ts}]
        return [{"type": "message", "message": ws.ephemeral_json(ephemeral)}]
    found = ws.get_message(channel_id, ts)
    if found is None:
        return []
    events = [{"type": "message", "message": message_web(ws, found)}]
    if kind == "message" and found.thread_ts and found.thread_ts != found.ts:
        parent = ws.get_message(channel_id, found.thread_ts)
        if parent is not None:
            events.append({"type": "message", "message": message_web(ws, parent)})
    return events


async def stream(request: web.Request, ui: WebUI) -> web.StreamResponse:
    """Server-Sent Events: ``{"type": "hello"}``, then ``message`` and ``deleted`` events."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, JSON] | None] = asyncio.Queue()
    ui.streams.add(queue)

    def listener(kind: str, data: JSON) -> None:
        if kind in STREAM_KINDS:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, dict(data)))
            except RuntimeError:  # the server's loop is closed
                pass

    unsubscribe = ui.ws.subscribe(listener)
    try:
        await response.write(b'retry: 1000\ndata: {"type": "hello"}\n\n')
        while True:
            try:
                change = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                await response.write(b": ping\n\n")
                continue
            if change is None:  # the server is shutting down
                break
            kind, data = change
            for event in stream_events(ui, kind, data):
                await response.write(f"data: {json.dumps(event)}\n\n".encode())
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        unsubscribe()
        ui.streams.discard(queue)
    return response
