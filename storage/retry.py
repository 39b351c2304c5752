"""When a failed job runs again: a pure policy object, no clock and no database."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: attempt n (1-based) that failed waits
    `min(base_delay * factor ** (n - 1), max_delay)` seconds before attempt n + 1, and no
    attempt follows number `max_attempts`.

    >>> RetryPolicy(max_attempts=3, base_delay=2, factor=3).next_delay(1)
    2.0
    >>> RetryPolicy(max_attempts=3, base_delay=2, factor=3).next_delay(2)
    6.0
    >>> RetryPolicy(max_attempts=3).next_delay(3) is None
    True
    """

    max_attempts: int = 3
    base_delay: float = 5.0
    max_delay: float = 300.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay < 0:
            raise ValueError(f"base_delay must not be negative, got {self.base_delay}")
        if self.max_delay < self.base_delay:
            raise ValueError(
                f"max_delay ({self.max_delay}) must not be below base_delay ({self.base_delay})")
        if self.factor < 1:
            raise ValueError(f"factor must be at least 1, got {self.factor}")

    def next_delay(self, attempt: int) -> float | None:
        """Seconds to wait after failed attempt number `attempt` (1-based), or None: give up."""
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt}")
        if attempt >= self.max_attempts:
            return None
        try:
            delay = self.base_delay * self.factor ** (attempt - 1)
        except OverflowError:
            delay = self.max_delay
        return float(min(delay, self.max_delay))


NO_RETRY = RetryPolicy(max_attempts=1, base_delay=0, max_delay=0)
