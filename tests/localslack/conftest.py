"""Fixtures for the local Slack server's protocol tests: the server on the test's event loop or
in a background thread, and a tiny app that verifies Slack signatures the way Bolt does."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest
import pytest_asyncio
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from localslack import DEFAULT_SIGNING_SECRET, LocalSlack


@dataclass
class Received:
    """One request the test app got."""

    headers: dict[str, str]
    body: bytes
    valid: bool

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def json(self) -> Any:
        """The JSON body, or the ``payload=`` of an interactivity request."""
        if self.headers.get("Content-Type", "").startswith("application/json"):
            return json.loads(self.body)
        return json.loads(self.form["payload"])


@dataclass
class Receiver:
    """A signed-request endpoint: 401 for a bad signature, else ``reply(received)``."""

    secret: str
    url: str = ""
    received: list[Received] = field(default_factory=list)
    reply: Callable[[Received], web.Response] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        valid = SignatureVerifier(self.secret).is_valid_request(body, dict(request.headers))
        got = Received(dict(request.headers), body, valid)
        self.received.append(got)
        if not valid:
            return web.json_response({"error": "invalid signature"}, status=401)
        return self.reply(got) if self.reply else web.Response(status=200)


@pytest_asyncio.fixture
async def slack():
    """A local Slack on the test's event loop (use AsyncWebClient against it)."""
    async with LocalSlack() as server:
        yield server


@pytest.fixture
def slack_thread():
    """A local Slack in a background thread (use the blocking WebClient against it)."""
    with LocalSlack() as server:
        yield server


@pytest_asyncio.fixture
async def receiver(slack: LocalSlack):
    """The app side: a signature-checking endpoint that ``slack`` delivers to."""
    rec = Receiver(DEFAULT_SIGNING_SECRET)
    app = web.Application()
    app.router.add_post("/slack/events", rec.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/slack/events"
    slack.deliver_to = rec.url
    yield rec
    await runner.cleanup()
