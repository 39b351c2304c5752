"""The `noop` job kind: does nothing, sleeps, or fails on request (queue tests, benchmarks)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from engine.errors import CancelledError
from engine.kinds.spec import JobContext, JobSpec, register_kind


@dataclass(frozen=True)
class NoopParams:
    """A job that does nothing (or sleeps, or fails)."""

    sleep: float = field(default=0.0, metadata={"help": "seconds to sleep"})
    fail: bool = field(default=False, metadata={"help": "fail at the end"})
    steps: int = field(default=0, metadata={"help": "progress steps to report while sleeping"})

    def __post_init__(self) -> None:
        if self.sleep < 0 or self.steps < 0:
            raise ValueError("sleep and steps must not be negative")


def run(params: NoopParams, ctx: JobContext) -> dict[str, Any]:
    for step in range(params.steps):
        if ctx.should_cancel():
            raise CancelledError(f"cancelled at step {step}")
        ctx.progress({"step": step + 1, "total_steps": params.steps})
        time.sleep(params.sleep / max(params.steps, 1))
    if not params.steps and params.sleep:
        time.sleep(params.sleep)
    if params.fail:
        raise RuntimeError("this no-op job was asked to fail")
    return {"ok": True}


SPEC = register_kind(JobSpec(name="noop", params=NoopParams, run=run, title="No-op"))
