"""Throttling of message updates, so all jobs together stay under Slack's `chat.update` limit
(about 50 a minute per workspace): a token bucket per workspace plus a minimum interval between
two updates of the same message. Final states wait for a token instead of being dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

Clock = Callable[[], float]


class TokenBucket:
    """`capacity` tokens, refilled at `rate` tokens a second. In any window of `w` seconds at
    most `capacity + rate * w` tokens are taken."""

    def __init__(self, rate: float, capacity: float, *, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError(f"a token bucket needs rate > 0 and capacity >= 1, not {rate}, "
                             f"{capacity}")
        self.rate, self.capacity, self.clock = rate, float(capacity), clock
        self._tokens = float(capacity)
        self._at = clock()

    def resize(self, rate: float, capacity: float) -> None:
        """A new rate and capacity from now on (tokens above the new capacity are dropped)."""
        if rate <= 0 or capacity < 1:
            raise ValueError(f"a token bucket needs rate > 0 and capacity >= 1, not {rate}, "
                             f"{capacity}")
        self._refill()
        self.rate, self.capacity = rate, float(capacity)
        self._tokens = min(self._tokens, self.capacity)

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def try_take(self) -> bool:
        """Take a token if one is there."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until a token is there (0 when one is)."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    async def take(self) -> None:
        """Wait for a token and take it."""
        while not self.try_take():
            await asyncio.sleep(max(self.wait_time(), 0.01))


class UpdateThrottle:
    """Decides when a job's status message may be updated.

    `per_minute` is the budget of one workspace: the bucket holds `burst` tokens and refills at
    `(per_minute - burst) / 60` a second, so no 60-second window sees more than `per_minute`
    updates. Each message waits at least `min_interval` seconds between two updates. Where
    several bot replicas report jobs of one workspace, each takes its share of the budget
    (`share`).
    """

    def __init__(self, per_minute: int = 50, *, burst: int = 10, min_interval: float = 3.0,
                 clock: Clock = time.monotonic) -> None:
        if per_minute <= burst:
            raise ValueError(f"per_minute ({per_minute}) must be more than burst ({burst})")
        self.per_minute, self.burst, self.min_interval = per_minute, burst, min_interval
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._last: dict[str, float] = {}
        self._replicas: dict[str, int] = {}

    def _size(self, team: str) -> tuple[float, float]:
        replicas = self._replicas.get(team, 1)
        return (self.per_minute - self.burst) / 60.0 / replicas, max(self.burst / replicas, 1.0)

    def bucket(self, team: str) -> TokenBucket:
        if team not in self._buckets:
            self._buckets[team] = TokenBucket(*self._size(team), clock=self.clock)
        return self._buckets[team]

    def share(self, team: str, replicas: int) -> None:
        """`replicas` bot replicas report jobs of `team` now: this one takes 1/replicas of the
        workspace's budget (the whole budget again with 1)."""
        replicas = max(int(replicas), 1)
        if self._replicas.get(team, 1) == replicas:
            return
        self._replicas[team] = replicas
        if team in self._buckets:
            self._buckets[team].resize(*self._size(team))

    def shares(self) -> dict[str, int]:
        """The workspaces whose budget is shared, and by how many replicas."""
        return {team: n for team, n in self._replicas.items() if n > 1}

    def try_update(self, team: str, key: str) -> float:
        """0 and a token taken when `key`'s message may be updated now; else the seconds to
        wait before asking again."""
        since = self.clock() - self._last.get(key, -1e9)
        if since < self.min_interval:
            return self.min_interval - since
        bucket = self.bucket(team)
        if not bucket.try_take():
            return max(bucket.wait_time(), 0.05)
        self._last[key] = self.clock()
        return 0.0

    async def final_update(self, team: str, key: str) -> None:
        """Wait for a token for a final state (never dropped, not held by the interval)."""
        await self.bucket(team).take()
        self._last[key] = self.clock()

    def mark(self, key: str) -> None:
        """`key`'s message was just posted: its first update waits `min_interval`."""
        self._last[key] = self.clock()

    def forget(self, key: str) -> None:
        self._last.pop(key, None)
