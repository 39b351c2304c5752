"""The local Slack server: the Web API under ``/api/``, file uploads and downloads,
``response_url`` endpoints and the Socket Mode WebSocket, on one aiohttp application.

``create_app`` builds the application; :class:`LocalSlack` runs it on 127.0.0.1 (port 0 by
default) either on the caller's event loop (``async with``) or in a background thread
(``with`` / ``start()``), and offers ``deliver`` to send the app what Slack would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Self, TypeVar
from urllib.parse import quote

from aiohttp import web

from .api import METHODS, ApiError, Params
from .deliver import Deliverer
from .messages import WorkspaceError
from .models import JSON, ApiCall
from .ratelimit import RateLimiter
from .responses import apply_response
from .socket_mode import SocketHub
from .state import Workspace
from .web import WEB
from .web import install as install_web

log = logging.getLogger(__name__)
T = TypeVar("T")

WORKSPACE = web.AppKey("workspace", Workspace)
HUB = web.AppKey("hub", SocketHub)
LIMITER = web.AppKey("limiter", RateLimiter)
DELIVERER = web.AppKey("deliverer", Deliverer)
TOKENS = web.AppKey("tokens", dict)

DEFAULT_BOT_TOKEN = "xoxb-localslack-bot-token"
DEFAULT_APP_TOKEN = "xapp-localslack-app-token"
DEFAULT_SIGNING_SECRET = "localslack-signing-secret"


def create_app(state: Workspace, *, bot_token: str, signing_secret: str,
               app_token: str | None = None, deliver_to: str | None = None,
               rate_limits: dict[str, int] | None = None,
               max_upload_bytes: int = 1 << 30, web_ui: bool = True,
               commands: list[JSON] | Callable[[], list[JSON]] | None = None,
               host: str = "127.0.0.1", page_token: str | None = None) -> web.Application:
    """The aiohttp application of a local Slack workspace over ``state``.

    ``bot_token`` authorizes Web API calls and file downloads, ``app_token`` (``xapp-...``)
    ``apps.connections.open``; ``signing_secret`` signs deliveries to ``deliver_to``;
    ``rate_limits`` maps method names to calls per minute (none by default). With ``web_ui``
    the browser page is served at ``/`` (:mod:`localslack.web`); ``commands`` are its
    ``/lm`` completions (default: none), ``host`` the interface it listens on, and
    ``page_token`` the secret the page needs (``/?token=...``; default: a random one).
    The Web API, uploads, downloads, ``response_url`` and Socket Mode are the app's side,
    authorized by its tokens and unguessable URLs as on Slack, never by the page's secret.
    """
    app = web.Application(client_max_size=max_upload_bytes)
    hub = SocketHub(state)
    app[WORKSPACE] = state
    app[HUB] = hub
    app[LIMITER] = RateLimiter(rate_limits)
    app[TOKENS] = {"bot": bot_token, "app": app_token}
    app[DELIVERER] = Deliverer(state, signing_secret=signing_secret, deliver_to=deliver_to,
                               hub=hub)
    app.router.add_route("*", "/api/{method}", _api)
    app.router.add_post("/upload/v1/{upload_id}", _upload)
    app.router.add_get("/files-pri/{team_file}/{name}", _download)
    app.router.add_get("/files-pri/{team_file}/download/{name}", _download)
    app.router.add_post("/response/{url_id}", _response_url)
    app.router.add_get("/link/", hub.handle)
    app.on_shutdown.append(hub.close_all)
    if web_ui:
        install_web(app, state, app[DELIVERER], commands=commands, host=host,
                    token=page_token)
    return app


async def _read_params(request: web.Request) -> JSON:
    params: JSON = dict(request.query)
    if not request.can_read_body:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise ApiError("invalid_json") from None
        if not isinstance(body, dict):
            raise ApiError("invalid_json")
        params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for key, value in (await request.post()).items():
            params[key] = value if isinstance(value, str) else value.file.read()
    return params


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def _loggable(params: JSON) -> JSON:
    return {k: (f"<{len(v)} bytes>" if isinstance(v, bytes) else v)
            for k, v in params.items() if k != "token"}


def _check_token(tokens: dict[str, str | None], token: str | None, wanted: str) -> None:
    if not token:
        raise ApiError("not_authed")
    other = "app" if wanted == "bot" else "bot"
    if token == tokens.get(wanted):
        return
    raise ApiError("not_allowed_token_type" if token == tokens.get(other) else "invalid_auth")


async def _api(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE]
    name = request.match_info["method"]
    params: JSON = {}
    status, headers = 200, {}
    try:
        params = await _read_params(request)
        token = _bearer(request) or (str(params["token"]) if params.get("token") else None)
        if name == "apps.connections.open":
            _check_token(request.app[TOKENS], token, "app")
            body: JSON = {"ok": True, "url": request.app[HUB].issue_url()}
        elif name not in METHODS:
            raise ApiError("unknown_method")
        else:
            _check_token(request.app[TOKENS], token, "bot")
            retry_after = request.app[LIMITER].check(name)
            if retry_after is not None:
                status, headers = 429, {"Retry-After": str(retry_after)}
                raise ApiError("ratelimited")
            body = {"ok": True, **METHODS[name](ws, Params(params))}
    except ApiError as exc:
        body = {"ok": False, "error": exc.error, **exc.extra}
    except WorkspaceError as exc:
        body = {"ok": False, "error": exc.error}
    ws.record_call(ApiCall(method=name, params=_loggable(params), headers=dict(request.headers),
                           status=status, error=body.get("error"), response=body))
    return web.json_response(body, status=status, headers=headers)


async def _upload(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE]
    if request.content_type == "multipart/form-data":
        fields = [v for v in (await request.post()).values() if not isinstance(v, str)]
        data = fields[0].file.read() if fields else b""
    else:
        data = await request.read()
    try:
        file = ws.write_upload(request.match_info["upload_id"], data)
        status, text = 200, f"OK - {len(data)}"
    except WorkspaceError:
        file, status, text = None, 404, "file_not_found"
    ws.record_call(ApiCall(method="upload", params={"file": file.id if file else None,
                                                     "size": len(data)},
                           headers=dict(request.headers), status=status,
                           error=None if status == 200 else text))
    return web.Response(text=text, status=status, content_type="text/plain")


async def _download(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE]
    team, _, file_id = request.match_info["team_file"].rpartition("-")
    token = _bearer(request)
    file = ws.get_file(file_id) if team == ws.team.id else None
    if token != request.app[TOKENS]["bot"]:
        status, error = 401, "not_authed" if token is None else "invalid_auth"
    elif file is None or file.name != request.match_info["name"] or file.content is None:
        status, error = 404, "file_not_found"
    else:
        status, error = 200, None
    ws.record_call(ApiCall(method="download", params={"file": file_id, "path": request.path},
                           headers=dict(request.headers), status=status, error=error))
    if status != 200 or file is None or file.content is None:
        return web.json_response({"ok": False, "error": error}, status=status)
    headers = {}
    if "/download/" in request.path:
        headers["Content-Disposition"] = f'attachment; filename="{file.name}"'
    return web.Response(body=file.content, content_type=file.mimetype, headers=headers)


async def _response_url(request: web.Request) -> web.Response:
    ws = request.app[WORKSPACE]
    status, body = 200, {"ok": True}
    payload: Any = None
    try:
        record = ws.use_response_url(request.match_info["url_id"])
        try:
            payload = await request.json()
        except json.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            status, body = 400, {"ok": False, "error": "invalid_payload"}
        else:
            apply_response(ws, payload, channel=record.channel, user=record.user,
                           message_ts=record.message_ts, ephemeral=record.ephemeral)
    except WorkspaceError as exc:
        status = 404 if exc.error in ("expired_url", "used_url") else 400
        body = {"ok": False, "error": exc.error}
    ws.record_call(ApiCall(method="response_url",
                           params=payload if isinstance(payload, dict) else {},
                           headers=dict(request.headers), status=status,
                           error=body.get("error"), response=body))
    return web.json_response(body, status=status)


class LocalSlack:
    """A running local Slack workspace: ``api_url`` for the app's ``SLACK_API_URL``,
    ``page_url`` (with the page's secret) for a browser.

    ``async with LocalSlack(...) as slack`` serves on the current event loop;
    ``with LocalSlack(...) as slack`` serves from a background thread (then run deliveries
    with ``slack.run_sync(slack.deliver.slash_command(...))``).
    """

    def __init__(self, state: Workspace | None = None, *, bot_token: str = DEFAULT_BOT_TOKEN,
                 signing_secret: str = DEFAULT_SIGNING_SECRET,
                 app_token: str | None = DEFAULT_APP_TOKEN, deliver_to: str | None = None,
                 host: str = "127.0.0.1", port: int = 0,
                 rate_limits: dict[str, int] | None = None, web_ui: bool = True,
                 commands: list[JSON] | Callable[[], list[JSON]] | None = None,
                 page_token: str | None = None) -> None:
        self.state = state or Workspace()
        self.bot_token, self.app_token, self.signing_secret = bot_token, app_token, signing_secret
        self.host, self.port = host, port
        self.app = create_app(self.state, bot_token=bot_token, signing_secret=signing_secret,
                              app_token=app_token, deliver_to=deliver_to,
                              rate_limits=rate_limits, web_ui=web_ui, commands=commands,
                              host=host, page_token=page_token)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` once started."""
        return f"http://{self.host}:{self.port}"

    @property
    def page_token(self) -> str | None:
        """The browser page's secret (None without the page)."""
        ui = self.app.get(WEB)
        return ui.token if ui is not None else None

    @property
    def page_url(self) -> str:
        """The page's address with its secret, ``http://127.0.0.1:PORT/?token=...``, the URL to
        open (it sets the session cookie and redirects to ``/``)."""
        return f"{self.base_url}/?token={quote(self.page_token or '', safe='')}"

    @property
    def api_url(self) -> str:
        """The Web API base URL (``SLACK_API_URL``), ending in ``/api/``."""
        return f"{self.base_url}/api/"

    @property
    def deliver(self) -> Deliverer:
        """Sends slash commands, events and clicks to the app."""
        return self.app[DELIVERER]

    @property
    def hub(self) -> SocketHub:
        """The Socket Mode connections."""
        return self.app[HUB]

    @property
    def deliver_to(self) -> str | None:
        """The app's request URL (for example ``http://127.0.0.1:3000/slack/events``)."""
        return self.deliver.deliver_to

    @deliver_to.setter
    def deliver_to(self, url: str | None) -> None:
        self.deliver.deliver_to = url

    def set_rate_limit(self, method: str, limit: int | None, *, per: float = 60.0) -> None:
        """Limit ``method`` to ``limit`` calls per ``per`` seconds (``None``: no limit)."""
        self.app[LIMITER].set(method, limit, per=per)

    async def start_async(self) -> Self:
        """Bind (port 0 picks a free port) and serve on the running event loop."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.state.base_url = self.base_url
        self._runner = web.AppRunner(self.app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        self._loop = asyncio.get_running_loop()
        log.info("local Slack at %s", self.base_url)
        return self

    async def stop_async(self) -> None:
        """Close connections and stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start_async()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()

    def start(self, timeout: float = 10.0) -> Self:
        """Serve from a daemon thread with its own event loop; returns once listening."""
        ready, errors = threading.Event(), []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start_async())
            except Exception as exc:  # noqa: BLE001 (handed to the starting thread)
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            loop.close()

        self._thread = threading.Thread(target=serve, name="localslack", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("local Slack did not start")
        if errors:
            raise errors[0]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background thread started by :meth:`start`."""
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run_sync(self, coro: Coroutine[Any, Any, T] | Awaitable[T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the server's loop from another thread and return its result."""
        if self._loop is None or self._thread is None:
            raise RuntimeError("run_sync needs a LocalSlack started with start() or `with`")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)  # type: ignore[arg-type]
