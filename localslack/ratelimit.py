"""Per-method rate limits with Slack's answer: HTTP 429, ``Retry-After`` and ``ratelimited``."""

from __future__ import annotations

import math
import threading
import time
from collections import deque

#: Slack's published tiers for the methods the bot uses (calls per minute per workspace).
#: Off by default; ``LocalSlack(rate_limits=SLACK_LIMITS)`` makes the local workspace as
#: strict as Slack.
SLACK_LIMITS: dict[str, int] = {
    "auth.test": 100,
    "chat.update": 50,
    "chat.delete": 50,
    "chat.postEphemeral": 100,
    "chat.appendStream": 100,
    "conversations.history": 50,
    "conversations.replies": 50,
    "conversations.info": 100,
    "conversations.list": 20,
    "conversations.open": 50,
    "files.info": 100,
    "files.getUploadURLExternal": 100,
    "files.completeUploadExternal": 100,
    "reactions.add": 50,
    "users.info": 100,
}


class RateLimiter:
    """Sliding-window limits: at most ``limit`` calls of a method within ``per`` seconds."""

    def __init__(self, limits: dict[str, int] | None = None, *, per: float = 60.0) -> None:
        self._lock = threading.Lock()
        self._limits: dict[str, tuple[int, float]] = {}
        self._seen: dict[str, deque[float]] = {}
        for method, limit in (limits or {}).items():
            self.set(method, limit, per=per)

    def set(self, method: str, limit: int | None, *, per: float = 60.0) -> None:
        """Allow ``limit`` calls of ``method`` per ``per`` seconds; ``None`` lifts the limit."""
        with self._lock:
            self._seen.pop(method, None)
            if limit is None:
                self._limits.pop(method, None)
            else:
                if limit < 1 or per <= 0:
                    raise ValueError(f"rate limit for {method} must be >= 1 per > 0 s: {limit}/{per}")
                self._limits[method] = (limit, per)

    def check(self, method: str) -> int | None:
        """Count one call; return the ``Retry-After`` seconds when it is over the limit."""
        with self._lock:
            if method not in self._limits:
                return None
            limit, per = self._limits[method]
            now = time.monotonic()
            seen = self._seen.setdefault(method, deque())
            while seen and seen[0] <= now - per:
                seen.popleft()
            if len(seen) >= limit:
                return max(1, math.ceil(seen[0] + per - now))
            seen.append(now)
            return None
