"""Several bot replicas on one database post each job's messages once; a bot that was down (or
a replica that died) catches up on what nobody reported."""

from __future__ import annotations

import asyncio
import re

import pytest

from bot.reporter import Reporter
from bot.throttle import UpdateThrottle
from localslack import GENERAL_CHANNEL_ID
from storage import queue, reporting
from storage.tables import Job, JobCreate


def enqueue(bot, kind: str, text: str = "") -> Job:
    ws = bot.workspace_id()
    params = {"texts": [text]} if kind == "classify" else {}
    return bot.db_call(lambda s: queue.enqueue(session=s, job_in=JobCreate(
        workspace_id=ws, kind=kind, params=params, team_id="T_LOCAL",
        channel_id=GENERAL_CHANNEL_ID, user_id="U_ADMIN")))


def predict(bot, text: str) -> None:
    """The worker's side of a classify job: claim the oldest and answer it."""
    job = bot.claim()
    bot.finish(job.id, {"predictions": [{"text": job.params["texts"][0], "label": "positive",
                                         "score": 0.9, "scores": {"positive": 0.9}}]})


def replica(bot, name: str, **options) -> Reporter:
    return Reporter(bot.rt, throttle=UpdateThrottle(min_interval=0.0), poll_interval=0.05,
                    replica_id=name, **options)


def posts(bot, needle: str) -> int:
    """How many chat.postMessage calls carried `needle`."""
    return sum(1 for call in bot.ws.calls("chat.postMessage") if needle in str(call.params))


def status_posts(bot, job: Job) -> int:
    pattern = re.compile(rf"#{job.id}\b")
    return sum(1 for call in bot.ws.calls("chat.postMessage") if pattern.search(str(call.params)))


@pytest.mark.asyncio
async def test_two_replicas_post_every_message_once(bot):
    second = replica(bot, "second")
    await second.start()
    try:
        statuses = [enqueue(bot, "noop") for _ in range(3)]
        texts = [f"review number {i}" for i in range(8)]
        for text in texts:
            enqueue(bot, "classify", text)
        await bot.wait(lambda: len(bot.posted("queued")) == 3)
        for job in statuses:
            bot.claim(kinds=["noop"])
            bot.finish(job.id, {"ok": True})
        for text in texts:
            predict(bot, text)
        await bot.wait(lambda: all(bot.posted(text) for text in texts))
        await bot.wait(lambda: len(bot.posted("done")) == 3)
        await asyncio.gather(bot.reporter.idle(), second.idle())
        await asyncio.sleep(0.3)  # any duplicate would have been posted by now
    finally:
        await second.stop()
    assert all(posts(bot, text) == 1 for text in texts)
    assert all(status_posts(bot, job) == 1 for job in statuses)
    reported = bot.jobs()
    assert all(job.reported_at is not None for job in reported)
    assert {job.reporter_id for job in reported} <= {bot.reporter.replica_id, "second"}


@pytest.mark.asyncio
async def test_a_restarted_bot_posts_what_finished_while_it_was_down(bot):
    running = enqueue(bot, "noop")
    await bot.wait(lambda: bot.posted(f"#{running.id}"))
    await bot.reporter.stop()
    bot.claim(kinds=["noop"])
    bot.finish(running.id, {"ok": True})
    enqueue(bot, "classify", "answered while the bot was down")
    predict(bot, "answered while the bot was down")

    fresh = replica(bot, "restarted")
    await fresh.start()
    try:
        await bot.wait(lambda: bot.posted("answered while the bot was down"))
        await bot.wait(lambda: [m for m in bot.posted(f"#{running.id}") if "done" in bot.text(m)])
        await fresh.idle()
    finally:
        await fresh.stop()
    assert status_posts(bot, running) == 1  # the status message was updated, not re-posted
    assert posts(bot, "answered while the bot was down") == 1


@pytest.mark.asyncio
async def test_the_jobs_of_a_dead_replica_are_taken_over_when_its_claim_expires(bot):
    await bot.reporter.stop()
    job = enqueue(bot, "classify", "claimed by a replica that died")
    assert bot.db_call(lambda s: reporting.claim_report(session=s, job_id=job.id, owner="dead",
                                                        lease_seconds=1.0))
    predict(bot, "claimed by a replica that died")
    survivor = replica(bot, "survivor", lease_seconds=0.2)
    await survivor.start()
    try:
        await asyncio.sleep(0.5)
        assert not bot.posted("claimed by a replica that died")  # the dead one's lease holds
        await bot.wait(lambda: bot.posted("claimed by a replica that died"), timeout=5)
    finally:
        await survivor.stop()
    row = bot.db_call(lambda s: queue.get_job(session=s, job_id=job.id))
    assert row.reporter_id == "survivor" and row.reported_at is not None


@pytest.mark.asyncio
async def test_replicas_reporting_one_workspace_share_its_update_budget(bot):
    await bot.reporter.stop()
    first, second = replica(bot, "first"), replica(bot, "second")
    ws = bot.workspace_id()
    # jobs without a channel: no reporter posts for them, so the claims below are the only ones
    jobs = [bot.db_call(lambda s: queue.enqueue(session=s, job_in=JobCreate(
        workspace_id=ws, kind="noop", team_id="T_LOCAL"))) for _ in range(2)]
    for job, owner in zip(jobs, ("first", "second"), strict=True):
        assert bot.db_call(lambda s, job=job, owner=owner: reporting.claim_report(
            session=s, job_id=job.id, owner=owner))
    await first.start()
    await second.start()
    try:
        assert first.throttle.shares() == second.throttle.shares() == {"T_LOCAL": 2}
        assert first.throttle.bucket("T_LOCAL").capacity == 5  # half the burst of 10
        bot.db_call(lambda s: reporting.mark_reported(session=s, job_id=jobs[1].id,
                                                      owner="second"))
        await first.catch_up()
        assert first.throttle.shares() == {}  # one replica left: the whole budget again
        assert first.throttle.bucket("T_LOCAL").capacity == 10
    finally:
        await asyncio.gather(first.stop(), second.stop())
