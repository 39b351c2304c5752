"""Serving the bot: an ASGI application for uvicorn (a production server) with Bolt's endpoint
`POST /slack/events`, `GET /healthz` and `GET /metrics`; Socket Mode when `SLACK_APP_TOKEN` is
set (the HTTP endpoints stay up for health checks and metrics); the job reporter; and,
optionally, an engine worker in a child process.

    serve(get_settings(), worker=True)       # what `lmops serve` runs
    serve(get_settings(), worker=False)      # a bot replica (`lmops serve --no-worker`)
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import uvicorn
from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import (
    run_async_bolt_app,
    send_async_response,
)
from slack_bolt.async_app import AsyncApp
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.app import build_app, runtime
from bot.metrics import CONTENT_TYPE
from bot.reporter import Reporter
from bot.runtime import REQUEST_INFO, BotRuntime
from engine.settings import Settings
from storage.db import make_engine

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
Hook = Callable[[], Awaitable[None]]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _reply(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BotASGI:
    """The HTTP face of the bot: Bolt at `path`, `/healthz`, `/metrics`, 404 elsewhere.

    Lifespan start-up runs `startup` hooks (the reporter, Socket Mode), shutdown `shutdown`.
    Every request to Bolt is timed to its acknowledgement for the metrics.
    """

    def __init__(self, app: AsyncApp, *, path: str = EVENTS_PATH,
                 startup: Sequence[Hook] = (), shutdown: Sequence[Hook] = ()) -> None:
        self.app, self.rt, self.path = app, runtime(app), path
        self.bolt = AsyncSlackRequestHandler(app, path=path)
        self.startup, self.shutdown = list(startup), list(shutdown)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == self.path and method == "POST":
            await self._slack(scope, receive, send)
        elif path == "/healthz" and method in ("GET", "HEAD"):
            healthy = await self.rt.store.ping()
            body = {"status": "ok" if healthy else "unavailable", "database": healthy}
            await _reply(send, 200 if healthy else 503, json.dumps(body).encode(),
                         "application/json")
        elif path == "/metrics" and method == "GET":
            try:
                depth: dict[str, int] | None = await self.rt.store.count_jobs()
            except Exception:  # noqa: BLE001 (metrics without the queue beat no metrics)
                depth = None
            await _reply(send, 200, self.rt.metrics.render(depth).encode(), CONTENT_TYPE)
        else:
            await _reply(send, 404, b"Not Found", "text/plain; charset=utf-8")

    async def _slack(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        info: dict[str, Any] = {}
        token = REQUEST_INFO.set(info)

        async def timed_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                kind = info.get("type") or ("unverified" if status == 401 else "other")
                self.rt.metrics.observe_ack(kind, time.perf_counter() - started, status)
            await send(message)

        try:
            await self.bolt(scope, receive, timed_send)
        finally:
            REQUEST_INFO.reset(token)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for hook in self.startup:
                        await hook()
                except Exception as error:  # reported to the server
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hook in self.shutdown:
                    try:
                        await hook()
                    except Exception:  # shut the rest down anyway
                        log.exception("shutdown step failed")
                await send({"type": "lifespan.shutdown.complete"})
                return


class TimedSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's aiohttp Socket Mode handler, timing each acknowledgement for the metrics."""

    def __init__(self, app: AsyncApp, rt: BotRuntime, app_token: str, **kwargs: Any) -> None:
        super().__init__(app, app_token, **kwargs)
        self.rt = rt

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.perf_counter()
        info: dict[str, Any] = {}
        token = REQUEST_INFO.set(info)
        try:
            response = await run_async_bolt_app(self.app, req)
            await send_async_response(client, req, response, time.time())
        finally:
            REQUEST_INFO.reset(token)
        self.rt.metrics.observe_ack(info.get("type") or req.type, time.perf_counter() - started,
                                    response.status)


def worker_command() -> list[str]:
    """The engine worker as a child process (`lmops worker`, run by module path)."""
    return [sys.executable, "-m", "lmops.cli", "worker"]


def _migrate(url: str) -> None:
    from storage import migrate

    if migrate.current_revision(url) != migrate.head_revision():
        migrate.upgrade(url)


def create_asgi(settings: Settings, *, reporter: bool | Reporter = True,
                socket_mode: bool | None = None, app: AsyncApp | None = None) -> BotASGI:
    """The bot as an ASGI application (for uvicorn or any ASGI server); its lifespan starts
    the reporter (`True`: the default one; or the given `Reporter`) and, when
    `SLACK_APP_TOKEN` is set (or `socket_mode`), Socket Mode."""
    app = app or build_app(settings, db=make_engine(settings.database_url))
    rt = runtime(app)
    startup: list[Hook] = []
    shutdown: list[Hook] = []
    if reporter:
        job_reporter = reporter if isinstance(reporter, Reporter) else Reporter(rt)
        startup.append(job_reporter.start)
        shutdown.append(job_reporter.stop)
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
    if socket_mode is None:
        socket_mode = bool(app_token)
    if socket_mode:
        if not app_token:
            raise ValueError("Socket Mode needs SLACK_APP_TOKEN (xapp-...)")
        handler = TimedSocketModeHandler(app, rt, app_token, web_client=rt.client)
        startup.append(handler.connect_async)
        shutdown.append(handler.close_async)
    shutdown.append(_closer(rt))
    return BotASGI(app, startup=startup, shutdown=shutdown)


def _closer(rt: BotRuntime) -> Hook:
    async def close() -> None:
        await rt.drain(timeout=5.0)
        rt.store.close()

    return close


async def serve_async(settings: Settings, *, worker: bool = True,
                      worker_cmd: Sequence[str] | None = None, host: str = "0.0.0.0",
                      port: int | None = None, reporter: bool = True,
                      log_level: str = "info") -> None:
    """Migrate the database, start the worker child (when `worker`), and serve the bot with
    uvicorn until SIGINT/SIGTERM; the worker gets SIGTERM (it hands its job back) at exit."""
    settings.home.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(_migrate, settings.database_url)
    asgi = create_asgi(settings, reporter=reporter)
    child = await asyncio.to_thread(subprocess.Popen, list(worker_cmd or worker_command())) \
        if worker else None

    async def stop_worker() -> None:
        if child is not None:
            await asyncio.to_thread(_stop_child, child)

    # uvicorn re-raises SIGTERM/SIGINT once it has shut down, which ends the process: the
    # worker is stopped in the lifespan shutdown, before that
    asgi.shutdown.insert(0, stop_worker)
    config = uvicorn.Config(asgi, host=host, port=settings.lmops_port if port is None else port,
                            lifespan="on", log_level=log_level, access_log=False)
    try:
        await uvicorn.Server(config).serve()
    finally:
        await stop_worker()


def _stop_child(child: subprocess.Popen[Any], timeout: float = 60.0) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("the worker did not stop within %.0f s; killing it", timeout)
        child.kill()
        child.wait()


def serve(settings: Settings, *, worker: bool = True, worker_cmd: Sequence[str] | None = None,
          host: str = "0.0.0.0", port: int | None = None, reporter: bool = True,
          log_level: str = "info") -> None:
    """Run the bot (blocking): see `serve_async`. On uvloop where it is installed."""
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(serve_async(settings, worker=worker, worker_cmd=worker_cmd, host=host,
                               port=port, reporter=reporter, log_level=log_level))


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop where it is installed (as uvicorn itself picks it, with httptools):
    it serves a burst of Slack requests with less CPU per request; None means asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
