"""The chat.update throttle (token bucket per workspace, interval per message), the reporter
under a burst of progress from several jobs, and the metrics' text format."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.metrics import Histogram, Metrics
from bot.throttle import TokenBucket, UpdateThrottle
from localslack import GENERAL_CHANNEL_ID
from storage import queue
from storage.tables import JobCreate


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket():
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, capacity=2, clock=clock)
    assert bucket.try_take() and bucket.try_take() and not bucket.try_take()
    assert bucket.wait_time() == pytest.approx(1.0)
    clock.now = 0.5
    assert not bucket.try_take()
    clock.now = 1.0
    assert bucket.try_take()
    with pytest.raises(ValueError):
        TokenBucket(rate=0, capacity=1)


def test_update_throttle_never_exceeds_the_limit_in_any_minute():
    clock = FakeClock()
    throttle = UpdateThrottle(per_minute=50, burst=10, min_interval=3.0, clock=clock)
    sent: list[float] = []
    for tick in range(6000):  # 10 minutes; 20 jobs asking every 0.1 s
        clock.now = tick * 0.1
        for job in range(20):
            if throttle.try_update("T1", str(job)) == 0:
                sent.append(clock.now)
    for start in sent:
        assert sum(1 for t in sent if start <= t < start + 60) <= 50
    assert len(sent) >= 400  # and it does not starve either: close to 40 a minute


def test_replicas_sharing_a_workspace_stay_under_its_limit_together():
    clock = FakeClock()
    replicas = [UpdateThrottle(per_minute=50, burst=10, min_interval=3.0, clock=clock)
                for _ in range(3)]
    for throttle in replicas:
        throttle.try_update("T1", "warm")  # a bucket made before the share is resized
        throttle.share("T1", 3)
    assert replicas[0].shares() == {"T1": 3}
    sent: list[float] = []
    for tick in range(3000):  # 5 minutes; each replica has 20 jobs asking every 0.1 s
        clock.now = tick * 0.1
        for r, throttle in enumerate(replicas):
            for job in range(20):
                if throttle.try_update("T1", f"{r}-{job}") == 0:
                    sent.append(clock.now)
    for start in sent:
        assert sum(1 for t in sent if start <= t < start + 60) <= 50
    assert len(sent) >= 180  # close to 40 a minute for the three together
    replicas[0].share("T1", 1)
    assert replicas[0].shares() == {}
    assert replicas[0].bucket("T1").capacity == 10


def test_update_throttle_interval_per_message_and_workspaces():
    clock = FakeClock()
    throttle = UpdateThrottle(per_minute=50, burst=10, min_interval=3.0, clock=clock)
    assert throttle.try_update("T1", "1") == 0
    assert throttle.try_update("T1", "1") == pytest.approx(3.0)
    assert throttle.try_update("T1", "2") == 0
    clock.now = 3.0
    assert throttle.try_update("T1", "1") == 0
    for job in range(20):
        throttle.try_update("T1", f"x{job}")
    assert throttle.try_update("T1", "y") > 0
    assert throttle.try_update("T2", "y") == 0  # another workspace has its own budget
    throttle.mark("z")
    assert throttle.try_update("T2", "z") == pytest.approx(3.0)


def test_histogram_and_counters_render():
    # prometheus_client's text format: label names sorted (`le` too), values as floats
    histogram = Histogram("h_seconds", "help", (0.1, 1.0), ("type",))
    for value in (0.05, 0.5, 5.0):
        histogram.observe(value, type="a")
    lines = histogram.render()
    assert 'h_seconds_bucket{le="0.1",type="a"} 1.0' in lines
    assert 'h_seconds_bucket{le="1.0",type="a"} 2.0' in lines
    assert 'h_seconds_bucket{le="+Inf",type="a"} 3.0' in lines
    assert 'h_seconds_count{type="a"} 3.0' in lines and histogram.count(type="a") == 3
    metrics = Metrics()
    metrics.observe_ack('we"ird', 0.01)
    text = metrics.render({"todo": 2})
    assert 'lmops_slack_requests_total{status="200",type="we\\"ird"} 1.0' in text
    assert text.endswith('lmops_jobs{status="todo"} 2.0\n')
    assert Metrics().render().count("lmops_slack_requests_total{") == 0  # a registry each


@pytest.mark.asyncio
async def test_reporter_throttles_a_burst_and_delivers_final_states(bot):
    bot.reporter.throttle = UpdateThrottle(per_minute=600, burst=3, min_interval=0.0)
    ws = bot.workspace_id()
    jobs = [bot.db_call(lambda s: queue.enqueue(session=s, job_in=JobCreate(
        workspace_id=ws, kind="noop", params={"steps": 100}, team_id="T_LOCAL",
        channel_id=GENERAL_CHANNEL_ID, user_id="U_ADMIN"))) for _ in range(3)]
    await bot.wait(lambda: len(bot.posted("queued")) == 3)
    for _ in jobs:
        bot.claim()
    started = time.monotonic()
    for step in range(1, 41):
        for job in jobs:
            bot.progress(job.id, {"step": step, "total_steps": 100})
        await asyncio.sleep(0.02)
    elapsed = time.monotonic() - started
    await asyncio.sleep(0.2)
    updates = len(bot.ws.calls("chat.update"))
    assert updates <= 3 + 10 * (elapsed + 0.3) + 3 and updates < 60
    assert bot.rt.metrics.deferred_updates.value() > 0
    for job in jobs:
        bot.finish(job.id, {"ok": True})
    await bot.wait(lambda: len(bot.posted("done")) == 3)
    await bot.reporter.idle()
    for job in jobs:
        [message] = [m for m in bot.posted(f"#{job.id}") if "done" in bot.text(m)]
        assert "Cancel" not in bot.text(message)
    assert all(c.status == 200 for c in bot.ws.calls("chat.update"))


@pytest.mark.asyncio
async def test_a_restarted_reporter_updates_the_same_status_message(bot):
    from bot.reporter import Reporter

    ws = bot.workspace_id()
    job = bot.db_call(lambda s: queue.enqueue(session=s, job_in=JobCreate(
        workspace_id=ws, kind="noop", team_id="T_LOCAL", channel_id=GENERAL_CHANNEL_ID)))
    await bot.wait(lambda: bot.posted(f"#{job.id}"))
    await bot.reporter.stop()
    bot.claim()  # an active job whose message exists is picked up again, not re-posted
    fresh = Reporter(bot.rt, throttle=UpdateThrottle(min_interval=0.0), poll_interval=0.05)
    await fresh.start()
    await bot.wait(lambda: [m for m in bot.posted(f"#{job.id}") if "running" in bot.text(m)])
    await fresh.stop()
    assert len(bot.posted(f"#{job.id}")) == 1


@pytest.mark.asyncio
async def test_a_slow_answer_is_acknowledged_first():
    from bot.handlers import answer

    acked, responded = [], []

    async def ack(**kwargs):
        acked.append(kwargs)

    async def respond(**kwargs):
        responded.append(kwargs)

    async def slow():
        await asyncio.sleep(0.2)
        return [{"type": "section", "text": {"type": "mrkdwn", "text": "late answer"}}]

    class Runtime:
        def __init__(self) -> None:
            self.tasks: set[asyncio.Future] = set()

        def spawn(self, coro, name=""):
            task = asyncio.ensure_future(coro)
            self.tasks.add(task)
            return task

    rt = Runtime()
    await answer(rt, ack, respond, slow(), timeout=0.05)
    assert "Working on it" in acked[0]["text"] and responded == []
    await asyncio.gather(*rt.tasks)
    assert responded[0]["text"] == "late answer"
    assert responded[0]["response_type"] == "ephemeral"


def test_seen_keys():
    from bot.runtime import SeenKeys

    seen = SeenKeys(size=2)
    assert seen.add(1) and 1 in seen and "1" in seen and not seen.add("1")
    seen.add(2)
    seen.add(3)
    assert 1 not in seen and 3 in seen
