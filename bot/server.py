"""Serving the bot: an ASGI application for uvicorn (a production server), on Starlette, with
Bolt's endpoint `POST /slack/events` (through Bolt's Starlette adapter), `GET /healthz` and
`GET /metrics`; Socket Mode when `SLACK_APP_TOKEN` is set (the HTTP endpoints stay up for health
checks and metrics); the job reporter; and, optionally, an engine worker in a child process.

    serve(get_settings(), worker=True)       # what `lmops serve` runs
    serve(get_settings(), worker=False)      # a bot replica (`lmops serve --no-worker`)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
import uvicorn
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import (
    run_async_bolt_app,
    send_async_response,
)
from slack_bolt.adapter.starlette.async_handler import (
    to_async_bolt_request,
    to_starlette_response,
)
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from bot.app import build_app, runtime
from bot.metrics import CONTENT_TYPE
from bot.reporter import Reporter
from bot.runtime import REQUEST_INFO, BotRuntime
from engine.settings import Settings
from storage import queue
from storage.db import SQLITE_BUSY_TIMEOUT_MS, make_engine
from storage.tables import Workspace

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
Hook = Callable[[], Awaitable[None]]
#: The largest body `POST /slack/events` reads (413 above it, before the signature is checked).
#: Slack's payloads are a few KB: a slash command's text is short, a message event's text is at
#: most 40,000 characters (Slack truncates longer messages), an interaction carries the bot's
#: own small message; 512 KiB holds the largest of them with its blocks, twice over.
MAX_BODY_BYTES = 512 * 1024
#: Slack's window for a request's timestamp (as Bolt and slack_sdk check it).
MAX_SKEW_SECONDS = 5 * 60
#: Seconds `/healthz` waits for the database to take a write before it says "busy".
HEALTH_TIMEOUT = 5.0


class BotASGI:
    """The HTTP face of the bot: a Starlette app with Bolt at `path`, `/healthz` and
    `/metrics` (404 elsewhere). Another endpoint is one more `Route` in `routes`.

    Lifespan start-up runs `startup` hooks (the reporter, Socket Mode), shutdown `shutdown`
    (both lists are read when the server starts and stops, so they can still be added to).
    Every request to Bolt is timed to its acknowledgement for the metrics.
    """

    def __init__(self, app: AsyncApp, *, path: str = EVENTS_PATH,
                 startup: Sequence[Hook] = (), shutdown: Sequence[Hook] = ()) -> None:
        self.app, self.rt, self.path = app, runtime(app), path
        self.startup, self.shutdown = list(startup), list(shutdown)
        self.http = Starlette(routes=[
            Route(path, self.slack_events, methods=["POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),  # GET routes answer HEAD too
            Route("/metrics", self.metrics, methods=["GET"]),
        ], lifespan=self._lifespan)

    @property
    def routes(self) -> list[BaseRoute]:
        """The routing table (Starlette's own list: a route appended here is served)."""
        return self.http.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.http(scope, receive, send)

    async def slack_events(self, request: Request) -> Response:
        """Bolt (through its Starlette adapter's converters), behind a gate: the body is read
        up to `MAX_BODY_BYTES` (413 above it) and its signature checked on the raw bytes (401)
        before anything parses it; a signed body that is neither a form nor JSON is a 400.
        Timed for the metrics."""
        started = time.perf_counter()
        info: dict[str, Any] = {}
        body, response = await self._signed_body(request)
        if response is None:
            token = REQUEST_INFO.set(info)
            try:
                response = await self._dispatch(request, body)
            finally:
                REQUEST_INFO.reset(token)
        status = response.status_code
        kind = info.get("type") or ("unverified" if status in (401, 413) else "other")
        self.rt.metrics.observe_ack(kind, time.perf_counter() - started, status)
        return response

    async def _dispatch(self, request: Request, body: bytes) -> Response:
        try:
            bolt_request = to_async_bolt_request(request, body)
        except Exception as exc:  # noqa: BLE001 (junk, from a holder of the signing secret)
            log.info("a signed request whose body is unreadable (%s)", type(exc).__name__)
            return _refuse(400, "the body is neither a form nor JSON")
        return to_starlette_response(await self.app.async_dispatch(bolt_request))

    async def _signed_body(self, request: Request) -> tuple[bytes, Response | None]:
        """The raw body when its size and signature are right, else the refusal."""
        secret = self.rt.settings.slack_signing_secret
        secret_value = secret.get_secret_value() if secret else ""
        timestamp = request.headers.get("x-slack-request-timestamp", "").strip()
        signature = request.headers.get("x-slack-signature", "")
        length = request.headers.get("content-length")
        if length is not None and not (length.isascii() and length.strip().isdigit()):
            return b"", _refuse(400, "bad Content-Length")
        if length is not None and int(length) > MAX_BODY_BYTES:
            return b"", _too_large()
        if not secret_value.strip() or not signature or not timestamp.isascii() \
                or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_SKEW_SECONDS:
            return b"", _refuse(401, "invalid request")  # nothing of the body read
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return b"", _too_large()
        raw = bytes(body)
        if not SignatureVerifier(secret_value).is_valid(raw, timestamp, signature):
            return b"", _refuse(401, "invalid request")
        return raw, None

    async def healthz(self, _request: Request) -> Response:
        """200 when the database answers and accepts a write (rolled back); 503 `unavailable`
        when it doesn't answer, 503 `degraded` (`read-only`, `busy`, `unwritable`) when it
        answers but can't be written."""
        if not await self.rt.store.ping():
            body: dict[str, Any] = {"status": "unavailable", "database": False}
        else:
            try:
                await asyncio.wait_for(self.rt.store.run(_write_check), HEALTH_TIMEOUT)
                body = {"status": "ok", "database": True}
            except Exception as exc:  # noqa: BLE001 (any failure to write is "degraded")
                text = str(exc).lower()
                state = "read-only" if "readonly" in text or "read-only" in text else \
                    "busy" if isinstance(exc, TimeoutError) or "locked" in text else "unwritable"
                log.warning("health: the database can't be written (%s)", state)
                body = {"status": "degraded", "database": state}
        return Response(json.dumps(body), status_code=200 if body["database"] is True else 503,
                        media_type="application/json")

    async def metrics(self, _request: Request) -> Response:
        """The Prometheus exposition, with the queue depth when the database answers."""
        try:
            depth: dict[str, int] | None = await self.rt.store.run(queue.count_jobs)
        except Exception:  # noqa: BLE001 (metrics without the queue beat no metrics)
            depth = None
        return Response(self.rt.metrics.render(depth), media_type=CONTENT_TYPE)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        try:
            for hook in self.startup:
                await hook()
        except Exception:  # Starlette reports it to the server, which stops
            log.exception("start-up failed")
            raise
        yield
        for hook in self.shutdown:
            try:
                await hook()
            except Exception:  # shut the rest down anyway
                log.exception("shutdown step failed")


def _refuse(status: int, error: str) -> Response:
    """A one-line JSON refusal (`{"error": ...}`); the server closes the connection after it,
    so what is left of a refused body is never read."""
    return Response(json.dumps({"error": error}), status_code=status,
                    media_type="application/json", headers={"connection": "close"})


def _too_large() -> Response:
    return _refuse(413, f"the body is over {MAX_BODY_BYTES // 1024} KiB")


def _write_check(*, session: Session) -> None:
    """A write the database has to accept, rolled back: an UPDATE that matches no row still
    needs the write lock on SQLite (waiting at most HEALTH_TIMEOUT for it, not the usual busy
    timeout) and a writable transaction on PostgreSQL."""
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.exec_driver_sql(f"PRAGMA busy_timeout={int(HEALTH_TIMEOUT * 500)}")
    try:
        connection.execute(sa.update(Workspace).where(sa.false()).values(id=Workspace.id))
    finally:
        try:
            if sqlite:
                connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            session.rollback()


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


def worker_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The worker child's environment: this process's (or `base`), less every `SLACK_*`
    variable in any case (the bot and app tokens, the signing secret, client secrets):
    workers never talk to Slack, so they never hold its credentials."""
    env = os.environ if base is None else base
    return {key: value for key, value in env.items() if not key.upper().startswith("SLACK_")}


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
                      worker_cmd: Sequence[str] | None = None, host: str | None = None,
                      port: int | None = None, reporter: bool = True,
                      log_level: str = "info") -> None:
    """Migrate the database, start the worker child (when `worker`), and serve the bot with
    uvicorn on `host` (default `LMOPS_HOST`) and `port` (default `LMOPS_PORT`) until
    SIGINT/SIGTERM; the worker gets SIGTERM (it hands its job back) at exit. The worker's
    environment has no Slack credentials (`worker_env`)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(_migrate, settings.database_url)
    asgi = create_asgi(settings, reporter=reporter)
    child = await asyncio.to_thread(subprocess.Popen, list(worker_cmd or worker_command()),
                                    env=worker_env()) if worker else None

    async def stop_worker() -> None:
        if child is not None:
            await asyncio.to_thread(_stop_child, child)

    # uvicorn re-raises SIGTERM/SIGINT once it has shut down, which ends the process: the
    # worker is stopped in the lifespan shutdown, before that
    asgi.shutdown.insert(0, stop_worker)
    config = uvicorn.Config(asgi, host=settings.lmops_host if host is None else host,
                            port=settings.lmops_port if port is None else port,
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
          host: str | None = None, port: int | None = None, reporter: bool = True,
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
