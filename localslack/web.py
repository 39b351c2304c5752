"""The browser face of the local workspace: a Slack-like page at ``/`` for the local user
(``U_ADMIN``), its JSON endpoints under ``/web/`` and a live stream of changes.

What the page does goes through :class:`~localslack.deliver.Deliverer`, so the app gets
exactly what Slack would send: typed ``/lm ...`` is a slash command, a message is a ``message``
event (and ``app_mention``), an upload is a ``file_share`` message event, a click is a
``block_actions`` payload, a reaction is ``reaction_added``.

Like Jupyter's, the page needs a secret made for the run (``token``): opened once as
``/?token=SECRET`` (the URL ``lmops dev`` prints), it answers with a session cookie derived
from the secret (HttpOnly, SameSite=Strict) and a redirect to the same URL without it. The
page, the ``/web/`` endpoints, the live stream and the files need that cookie (or the token
in the URL of a GET); without it they are 403, so another user of the machine, or of the
network, can't act as the local user. POSTs also need the ``X-Requested-With`` header, and
the page is only served to loopback host names (unless the server listens on every
interface), so another web site can neither read the workspace nor act in it. Files reach
the browser through ``/web/files/...`` with that cookie, never with the bot token.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from .deliver import Deliverer
from .models import ADMIN_USER_ID, JSON
from .state import Workspace
from .web_actions import action, message, message_web, reaction, stream, to_slack_text, upload

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
COOKIE = "localslack_session"
CSRF_HEADER = "X-Requested-With"
#: Images the browser may show inline; anything else is served as a download.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
       "form-action 'none'")

FORBIDDEN = ("This page needs its secret: open the URL that `lmops dev` printed "
             "(http://127.0.0.1:PORT/?token=...).\n")

WEB = web.AppKey("web", "WebUI")


def session_cookie(token: str) -> str:
    """The session cookie's value for ``token``: derived from it, not the token itself."""
    return hmac.new(token.encode(), b"localslack page session", hashlib.sha256).hexdigest()


class WebUI:
    """The page's state on one aiohttp application: the workspace, who sends, the session."""

    def __init__(self, workspace: Workspace, deliverer: Deliverer, *,
                 commands: list[JSON] | Callable[[], list[JSON]] | None = None,
                 user: str = ADMIN_USER_ID, host: str = "127.0.0.1",
                 token: str | None = None) -> None:
        self.ws, self.deliver, self.user = workspace, deliverer, user
        #: the secret in the page's URL (``?token=``); made here when not given
        self.token = token or secrets.token_urlsafe(32)
        self.session = session_cookie(self.token)
        self.host = host
        self._commands = commands
        self.streams: set[asyncio.Queue[Any]] = set()

    async def close_streams(self, app: web.Application | None = None) -> None:
        """End the live streams (at shutdown), so no handler waits for its next change."""
        for waiting in list(self.streams):
            waiting.put_nowait(None)

    @property
    def commands(self) -> list[JSON]:
        """The ``/lm`` sub-commands for completion: ``[{name, usage, description}]``."""
        if callable(self._commands):
            self._commands = self._commands()
        if self._commands is None:
            self._commands = []  # none given: no completions (``lmops dev`` passes the bot's)
        return self._commands

    def host_allowed(self, request: web.Request) -> bool:
        """Loopback names only, unless the server listens on every interface."""
        if self.host in ("0.0.0.0", "::", ""):
            return True
        try:
            name = request.url.host or ""  # from the Host header
        except ValueError:
            return False
        return name.strip("[]") in LOOPBACK or name == self.host

    def has_session(self, request: web.Request) -> bool:
        """The request carries this run's session cookie."""
        return hmac.compare_digest(request.cookies.get(COOKIE, "").encode(),
                                   self.session.encode())

    def has_token(self, request: web.Request) -> bool:
        """A GET with this run's secret as ``?token=``."""
        given = request.query.get("token")
        return (request.method in ("GET", "HEAD") and given is not None
                and hmac.compare_digest(given.encode(), self.token.encode()))

    def authorized(self, request: web.Request) -> bool:
        """The page's cookie (and, for POSTs, the header that forms can't send)."""
        if not self.host_allowed(request) or not self.has_session(request):
            return False
        return request.method in ("GET", "HEAD") or bool(request.headers.get(CSRF_HEADER))


def install(app: web.Application, workspace: Workspace, deliverer: Deliverer, *,
            commands: list[JSON] | Callable[[], list[JSON]] | None = None,
            host: str = "127.0.0.1", token: str | None = None) -> WebUI:
    """Add the page, its static files and the ``/web/`` endpoints to ``app``; ``token`` is
    the page's secret (default: a new random one, :attr:`WebUI.token`)."""
    ui = WebUI(workspace, deliverer, commands=commands, host=host, token=token)
    app[WEB] = ui
    app.on_shutdown.append(ui.close_streams)
    app.router.add_get("/", _guard(_index))
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/web/bootstrap", _guard(_bootstrap))
    app.router.add_get("/web/history", _guard(_history))
    app.router.add_get("/web/replies", _guard(_replies))
    app.router.add_get("/web/stream", _guard(stream))
    app.router.add_get("/web/files/{file_id}", _guard(_file))
    app.router.add_get("/web/files/{file_id}/{name}", _guard(_file))
    app.router.add_post("/web/message", _guard(message))
    app.router.add_post("/web/upload", _guard(upload))
    app.router.add_post("/web/action", _guard(action))
    app.router.add_post("/web/reaction", _guard(reaction))
    return ui


Handler = Callable[[web.Request, WebUI], Any]


def _forbidden(text: str = FORBIDDEN) -> web.Response:
    return web.Response(status=403, text=text, headers={"Cache-Control": "no-store"})


def _guard(handler: Handler) -> Callable[[web.Request], Any]:
    async def guarded(request: web.Request) -> web.StreamResponse:
        ui = request.app[WEB]
        if not ui.host_allowed(request):
            return _forbidden("forbidden host\n")
        if ui.has_token(request):  # the printed URL: a session, and the URL without the secret
            query = [(k, v) for k, v in request.query.items() if k != "token"]
            response = web.HTTPSeeOther(request.rel_url.with_query(query), headers={
                "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
            response.set_cookie(COOKIE, ui.session, httponly=True, samesite="Strict", path="/")
            raise response
        if not ui.has_session(request):
            return _forbidden()
        if not ui.authorized(request):  # a POST a form could send
            return _forbidden(f"a POST needs the {CSRF_HEADER} header\n")
        return await handler(request, ui)

    return guarded


async def _index(request: web.Request, ui: WebUI) -> web.Response:
    response = web.FileResponse(STATIC / "index.html")
    response.headers.update({"Content-Security-Policy": CSP, "Cache-Control": "no-store",
                             "X-Content-Type-Options": "nosniff",
                             "Referrer-Policy": "no-referrer"})
    return response  # type: ignore[return-value]


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in ("app.js", "app.css", "favicon.svg"):
        raise web.HTTPNotFound()
    response = web.FileResponse(STATIC / name)
    response.headers.update({"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
    return response


# -- reading ------------------------------------------------------------------------------


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, fraction = ts.partition(".")
    return int(seconds or 0), int(fraction.ljust(6, "0")[:6] or 0)


def _ephemerals(ui: WebUI, request: web.Request, channel: str,
                thread_ts: str | None) -> list[JSON]:
    """The local user's live ephemeral messages here; with ``since`` (the ts the page got from
    ``/web/bootstrap``) only those shown after the page was loaded: Slack's client drops
    ephemeral messages when it is reloaded."""
    try:
        since = _ts_key(request.query["since"]) if request.query.get("since") else None
    except ValueError:
        since = None
    return [ui.ws.ephemeral_json(e) for e in ui.ws.ephemerals_for(ui.user, channel)
            if (e.thread_ts or None) == thread_ts and (since is None or _ts_key(e.ts) > since)]


async def _bootstrap(request: web.Request, ui: WebUI) -> web.Response:
    ws = ui.ws
    channels = [{"id": c.id, "name": c.name, "is_im": c.is_im, "is_private": c.is_private,
                 "user": c.user, "topic": c.topic}
                for c in ws.list_channels() if ui.user in c.members and not c.is_archived]
    users = {u.id: {"id": u.id, "name": u.name, "real_name": u.real_name or u.name,
                    "is_bot": u.is_bot, "is_admin": u.is_admin} for u in ws.list_users()}
    return web.json_response({"ok": True, "team": {"id": ws.team.id, "name": ws.team.name},
                              "me": ui.user, "bot_user_id": ws.bot_user_id,
                              "since": ws.next_ts(),  # ephemerals before this are gone
                              "users": users, "channels": channels,
                              "commands": [{"command": "/lm", "subcommands": ui.commands}]})


def _channel_param(request: web.Request, ui: WebUI) -> str:
    channel = ui.ws.get_channel(request.query.get("channel", ""))
    if channel is None or ui.user not in channel.members:
        raise web.HTTPNotFound(text=json.dumps({"ok": False, "error": "channel_not_found"}),
                               content_type="application/json")
    return channel.id


async def _history(request: web.Request, ui: WebUI) -> web.Response:
    channel = _channel_param(request, ui)
    messages = [message_web(ui.ws, m) for m in reversed(ui.ws.history(channel))]
    return web.json_response({"ok": True, "channel": channel, "messages": messages,
                              "ephemerals": _ephemerals(ui, request, channel, None)})


async def _replies(request: web.Request, ui: WebUI) -> web.Response:
    channel = _channel_param(request, ui)
    ts = request.query.get("ts", "")
    thread = ui.ws.replies(channel, ts) if ui.ws.get_message(channel, ts) else []
    if not thread:
        return web.json_response({"ok": False, "error": "thread_not_found"}, status=404)
    root = thread[0].ts
    return web.json_response({"ok": True, "channel": channel, "thread_ts": root,
                              "messages": [message_web(ui.ws, m) for m in thread],
                              "ephemerals": _ephemerals(ui, request, channel, root)})


async def _file(request: web.Request, ui: WebUI) -> web.Response:
    file = ui.ws.get_file(request.match_info["file_id"])
    name = request.match_info.get("name")
    if file is None or file.content is None or name not in (None, file.name):
        return web.json_response({"ok": False, "error": "file_not_found"}, status=404)
    inline = file.mimetype in INLINE_TYPES
    disposition = "inline" if inline else "attachment"
    quoted = file.name.replace("\\", "_").replace('"', "_")
    return web.Response(body=file.content,
                        content_type=file.mimetype if inline else "application/octet-stream",
                        headers={"Content-Disposition": f'{disposition}; filename="{quoted}"',
                                 "X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": "sandbox; default-src 'none'",
                                 "Cache-Control": "private, max-age=3600"})


__all__ = ["WebUI", "install", "message_web", "to_slack_text"]
