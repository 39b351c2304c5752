"""Socket Mode: ``apps.connections.open`` hands out a WebSocket URL on the local server; the
app connects, gets ``hello``, then envelopes, and acknowledges each with its ``envelope_id``.

:class:`SocketHub` keeps the open connections. While one is open, deliveries go over it
instead of HTTP, as they do in Slack when an app uses Socket Mode.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import uuid
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from .models import JSON
from .state import Workspace

log = logging.getLogger(__name__)


class SocketHub:
    """The app's Socket Mode connections and the envelopes waiting for an ack."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tickets: set[str] = set()
        self._sockets: list[web.WebSocketResponse] = []
        self._pending: dict[str, asyncio.Future[JSON]] = {}

    @property
    def connected(self) -> bool:
        """True while at least one app connection is open."""
        return any(not ws.closed for ws in self._sockets)

    def issue_url(self) -> str:
        """A one-time ``ws://`` URL for ``apps.connections.open``."""
        ticket = secrets.token_urlsafe(16)
        self._tickets.add(ticket)
        base = self.workspace.base_url.replace("http://", "ws://", 1)
        return f"{base}/link/?ticket={ticket}&app_id={self.workspace.app_id}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The WebSocket endpoint: ``hello`` first, then acks until the app hangs up."""
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.json_response({"ok": False, "error": "invalid_ticket"}, status=401)
        self._tickets.discard(ticket)
        self.loop = asyncio.get_running_loop()
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        try:
            await ws.send_json({
                "type": "hello", "num_connections": len(self._sockets),
                "debug_info": {"host": "localslack", "approximate_connection_time": 3600},
                "connection_info": {"app_id": self.workspace.app_id}})
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(msg.data)
        finally:
            self._sockets.remove(ws)
        return ws

    def _on_text(self, data: str) -> None:
        try:
            ack = json.loads(data)
        except json.JSONDecodeError:
            log.warning("socket mode: ignoring a message that is not JSON: %.80s", data)
            return
        waiter = self._pending.pop(str(ack.get("envelope_id")), None) if isinstance(ack, dict) else None
        if waiter is not None and not waiter.done():
            waiter.set_result(ack)

    async def request(self, envelope_type: str, payload: JSON, *, accepts_response_payload: bool,
                      timeout: float = 3.0, retry_attempt: int = 0,
                      retry_reason: str = "") -> tuple[JSON, JSON | None]:
        """Send an envelope to the app; return it and the ack (None when none came in time)."""
        envelope: JSON = {"envelope_id": str(uuid.uuid4()), "type": envelope_type,
                          "payload": payload, "accepts_response_payload": accepts_response_payload}
        if envelope_type == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        if self.loop is None:
            raise RuntimeError("no Socket Mode connection is open")
        if asyncio.get_running_loop() is self.loop:
            return envelope, await self._send(envelope, timeout)
        future = asyncio.run_coroutine_threadsafe(self._send(envelope, timeout), self.loop)
        return envelope, await asyncio.wrap_future(future)

    async def _send(self, envelope: JSON, timeout: float) -> JSON | None:
        sockets = [ws for ws in self._sockets if not ws.closed]
        if not sockets:
            raise RuntimeError("no Socket Mode connection is open")
        waiter: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        self._pending[envelope["envelope_id"]] = waiter
        await sockets[-1].send_json(envelope)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return None
        finally:
            self._pending.pop(envelope["envelope_id"], None)

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask the app to reconnect, as Slack does every few hours (``type: disconnect``)."""
        for ws in list(self._sockets):
            await ws.send_json({"type": "disconnect", "reason": reason,
                                "debug_info": {"host": "localslack"}})

    async def close_all(self, _app: Any = None) -> None:
        """Close every connection (on server shutdown)."""
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
