"""The job reporter: turns job changes in storage into Slack messages. Workers never talk to
Slack; they write progress and results, and this posts them.

A generic loop that never branches on a job kind: each kind's presenter (`bot.kinds`) says
whether its job's message is live (posted when the job appears and updated as it runs, like a
fine-tune's status message or a streamed chat reply) or posted once when the job is done (a
prediction), what the message shows, and what follows in its thread on success (metrics, charts,
a Promote button). Updates go through `UpdateThrottle`: all jobs of a workspace together stay
under Slack's `chat.update` limit, one message is updated at most every few seconds, and the
final state is always delivered. `bot.job_messages` makes the Slack calls.

Change notifications come from `storage.notify.JobWatcher` (LISTEN/NOTIFY, or a cheap poll
on SQLite); each job is handled by at most one task at a time, which always reads the job's
latest state, so a burst of changes collapses into one message update.

Several bot replicas may run against one database: a replica claims a job
(`storage.reporting`, a lease it renews while it reports) before it posts anything for it, and
marks the job reported after its final message, so each message is posted once. At start-up and
every lease period a replica picks up the jobs nobody is reporting (those of a replica that died,
and those that finished while no bot was running) and takes its share of each workspace's
`chat.update` budget: the budget divided by the replicas holding claims on its jobs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time

from slack_sdk.web.async_client import AsyncWebClient

from bot.job_messages import FINAL, JobMessage, JobMessenger
from bot.job_requests import job_view
from bot.kinds import presenter_for
from bot.runtime import BotRuntime, SeenKeys
from bot.store import BotStore
from bot.throttle import UpdateThrottle
from storage import queue, reporting
from storage.notify import JobEvent, JobWatcher
from storage.tables import JobPublic

log = logging.getLogger(__name__)


class Reporter:
    """Posts and updates job messages; `start()` on the bot's event loop, `stop()` at exit."""

    def __init__(self, rt: BotRuntime, *, client: AsyncWebClient | None = None,
                 throttle: UpdateThrottle | None = None, poll_interval: float = 0.1,
                 concurrency: int = 16, lease_seconds: float = 30.0,
                 replica_id: str | None = None) -> None:
        self.rt = rt
        self.client = client or rt.client
        self.messenger = JobMessenger(client or rt.client, throttle or UpdateThrottle(),
                                      rt.metrics, rt.settings.artifacts)
        self.store = BotStore(rt.store.db, threads=4, name="lmops-reporter")
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.replica_id = replica_id or \
            f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._claims: dict[int, float] = {}  # job id -> when to renew its claim (monotonic)
        self._sweeper: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(concurrency)
        self._running: dict[int, asyncio.Task[None]] = {}
        self._again: set[int] = set()
        self._messages: dict[int, JobMessage] = {}
        self._finished = SeenKeys(size=20_000, ttl=86_400)
        self._watcher: JobWatcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

    @property
    def throttle(self) -> UpdateThrottle:
        return self.messenger.throttle

    @throttle.setter
    def throttle(self, throttle: UpdateThrottle) -> None:
        self.messenger.throttle = throttle

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Watch job changes, and report what nobody is reporting (now and every lease)."""
        self._loop = asyncio.get_running_loop()
        self._watcher = JobWatcher(self.store.db.url, self._on_event,
                                   poll_interval=self.poll_interval)
        await asyncio.to_thread(self._watcher.start)
        await self.catch_up()
        self._sweeper = self._loop.create_task(self._sweep(), name="report-sweeper")

    async def catch_up(self) -> None:
        """Kick every job no replica is reporting: active ones, ones whose replica died, and
        ones that finished while no bot was running (within a day). Then split each
        workspace's update budget by the replicas reporting its jobs now."""
        for job in await self.store.run(reporting.unreported_jobs):
            self.kick(job.id)
        replicas = await self.store.run(reporting.reporting_replicas)
        for team in set(replicas) | set(self.throttle.shares()):
            self.throttle.share(team, replicas.get(team, 1))

    async def _sweep(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.lease_seconds)
            try:
                await self.catch_up()
            except Exception:
                log.exception("looking for unreported jobs failed")

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop watching; let the Slack calls under way finish (a posted message's ts must
        reach storage), then cancel what is left (held-back updates)."""
        self._closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        if self._watcher is not None:
            await asyncio.to_thread(self._watcher.stop)
            self._watcher = None
        tasks = list(self._running.values())
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:  # another replica (or this one restarted) takes over at once
            await self.store.run(reporting.release_reports, owner=self.replica_id)
        except Exception:
            log.warning("releasing this replica's job reports failed", exc_info=True)
        self.store.close()

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until no job is being reported (tests)."""
        deadline = self._now() + timeout
        while self._running and self._now() < deadline:
            await asyncio.sleep(0.02)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _on_event(self, event: JobEvent) -> None:  # the watcher's thread
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.kick, event.job_id)

    def kick(self, job_id: int) -> None:
        """Report job `job_id`'s latest state (now, or after the task that is at it)."""
        if job_id in self._finished or self._closing:
            return
        if job_id in self._running:
            self._again.add(job_id)
            return
        self._running[job_id] = asyncio.get_running_loop().create_task(
            self._run(job_id), name=f"report-job-{job_id}")

    async def _run(self, job_id: int) -> None:
        try:
            while True:
                self._again.discard(job_id)
                try:
                    async with self._slots:
                        delay = await self._process(job_id)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("reporting job %s failed", job_id)
                    delay = None
                if delay and not self._closing:
                    await asyncio.sleep(delay)
                elif job_id not in self._again or self._closing:
                    return
        finally:
            self._running.pop(job_id, None)

    # -- one job --------------------------------------------------------------------------

    async def _process(self, job_id: int) -> float | None:
        """Bring the job's message up to date; returns seconds to wait when throttled."""
        job: JobPublic | None = await self.store.find(queue.get_job, job_id=job_id)
        if job is None or not job.channel_id or job_id in self._finished:
            return None
        final = job.status in FINAL
        if job.reported_at:
            self._finished.add(job_id)
            return None
        presenter = presenter_for(job.kind)
        if not presenter.live and not final:
            return None  # its one message comes when it is done
        if not await self._claim(job_id):
            self._messages.pop(job_id, None)  # another replica reports it
            return None
        message = self._messages.setdefault(job_id, JobMessage(job.status_ts))
        view = job_view(job)
        posted, delay = await self.messenger.show(job, message, presenter.message(view), final)
        if posted:
            await self.store.run(queue.set_status_message, job_id=job.id,
                                 status_ts=str(message.ts))
        if delay:
            return delay
        if final and job.status == "succeeded":
            await self.messenger.follow_up(job, message, presenter.results(view),
                                           presenter.plots)
        if final:
            await self.store.run(reporting.mark_reported, job_id=job.id, owner=self.replica_id)
            self._finish(job)
        return None

    async def _claim(self, job_id: int) -> bool:
        """Whether this replica reports the job: claims it, or renews its claim when half of
        the lease has passed."""
        now = time.monotonic()
        if self._claims.get(job_id, 0.0) > now:
            return True
        if not await self.store.run(reporting.claim_report, job_id=job_id,
                                    owner=self.replica_id, lease_seconds=self.lease_seconds):
            self._claims.pop(job_id, None)
            return False
        self._claims[job_id] = now + self.lease_seconds / 2
        return True

    def _finish(self, job: JobPublic) -> None:
        self._finished.add(job.id)
        self._messages.pop(job.id, None)
        self._claims.pop(job.id, None)
        self.throttle.forget(str(job.id))
        if job.started_at and job.finished_at:
            self.rt.metrics.job_seconds.observe(
                (job.finished_at - job.started_at).total_seconds(), kind=job.kind,
                status=job.status)
