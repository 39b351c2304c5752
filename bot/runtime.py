"""What the bot's listeners, middleware, reporter and HTTP endpoints share: the settings, the
storage facade, the metrics, the Web API client and the background tasks started after an ack.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from bot.store import BotStore
from engine.settings import Settings

log = logging.getLogger(__name__)

#: Set per request by the HTTP layer; the middleware writes the request's type into it.
REQUEST_INFO: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "lmops_request_info", default=None)


def request_type(body: dict[str, Any]) -> str:
    """`slash_command`, `event`, `block_actions`, ... for a request body."""
    if body.get("command"):
        return "slash_command"
    kind = str(body.get("type") or "other")
    return "event" if kind == "event_callback" else kind


class SeenKeys:
    """A bounded set of recently seen keys (uploads handled, retries answered)."""

    def __init__(self, size: int = 4096, ttl: float = 3600.0) -> None:
        self.size, self.ttl = size, ttl
        self._keys: OrderedDict[str, float] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        seen = self._keys.get(str(key))
        return seen is not None and time.monotonic() - seen < self.ttl

    def add(self, key: object) -> bool:
        """Remember `key`; False when it was seen within the TTL already."""
        key = str(key)
        now = time.monotonic()
        seen = self._keys.get(key)
        if seen is not None and now - seen < self.ttl:
            return False
        self._keys[key] = now
        self._keys.move_to_end(key)
        while len(self._keys) > self.size:
            self._keys.popitem(last=False)
        return True

    def forget(self, key: object, after: float = 0.0) -> None:
        """Let `key` be added again `after` seconds from now (a file that couldn't be used)."""
        if str(key) in self._keys:
            self._keys[str(key)] = time.monotonic() - self.ttl + after


@dataclass
class BotRuntime:
    """The state of one bot process."""

    settings: Settings
    store: BotStore
    client: AsyncWebClient
    metrics: Metrics = field(default_factory=Metrics)
    seen: SeenKeys = field(default_factory=SeenKeys)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str = "lmops") -> asyncio.Task[Any]:
        """Run `coro` in the background (after an ack); failures are logged, never lost."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for the background tasks started so far (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self.tasks and time.monotonic() < deadline:
            await asyncio.wait(set(self.tasks), timeout=max(deadline - time.monotonic(), 0.01))
