"""The job reporter: turns job changes in storage into Slack messages. Workers never talk to
Slack; they write progress and results, and this posts them.

- Fine-tunes, evaluations and other long jobs get ONE status message (posted when the job
  appears, its ts stored as the job's `status_ts`) updated with `job_status_blocks`. Updates
  go through `UpdateThrottle`: all jobs of a workspace together stay under Slack's
  `chat.update` limit, one message is updated at most every few seconds, and the final state
  is always delivered. A success adds `job_result_blocks` in the message's thread, with the
  plots uploaded there (files upload v2) and a Promote button for a fine-tune; a failure turns
  the status message into one short line saying why.
- Chat jobs get their reply message at once, updated with the partial reply as it grows.
- Classify jobs get `prediction_blocks` when they finish.

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
import json
import logging
import os
import secrets
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.blocks import (
    chat_reply_blocks,
    fallback_text,
    job_failed_blocks,
    job_result_blocks,
    job_status_blocks,
    prediction_blocks,
)
from bot.blocks_base import Block, context, fit
from bot.jobs import job_view
from bot.mrkdwn import escape, mention, truncate
from bot.runtime import BotRuntime, SeenKeys
from bot.store import BotStore, Row
from bot.throttle import UpdateThrottle
from storage.notify import JobEvent, JobWatcher

log = logging.getLogger(__name__)
FINAL = frozenset({"succeeded", "failed", "cancelled"})
_UNREACHABLE = frozenset({"not_in_channel", "channel_not_found", "is_archived"})


class _Message:
    """What the reporter knows about a job's message."""

    def __init__(self, ts: str | None) -> None:
        self.ts = ts
        self.rendered = ""
        self.unreachable = False


class Reporter:
    """Posts and updates job messages; `start()` on the bot's event loop, `stop()` at exit."""

    def __init__(self, rt: BotRuntime, *, client: AsyncWebClient | None = None,
                 throttle: UpdateThrottle | None = None, poll_interval: float = 0.1,
                 concurrency: int = 16, lease_seconds: float = 30.0,
                 replica_id: str | None = None) -> None:
        self.rt = rt
        self.client = client or rt.client
        self.throttle = throttle or UpdateThrottle()
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
        self._messages: dict[int, _Message] = {}
        self._finished = SeenKeys(size=20_000, ttl=86_400)
        self._watcher: JobWatcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False

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
        for job in await self.store.unreported_jobs():
            self.kick(int(job["id"]))
        replicas = await self.store.reporting_replicas()
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
            await self.store.release_reports(self.replica_id)
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
        job = await self.store.get_job(job_id)
        if job is None or not job.get("channel_id") or job_id in self._finished:
            return None
        final = job["status"] in FINAL
        if job.get("reported_at"):
            self._finished.add(job_id)
            return None
        if job["kind"] == "classify" and not final:
            return None  # a prediction gets one message, when it is done
        if not await self._claim(job_id):
            self._messages.pop(job_id, None)  # another replica reports it
            return None
        message = self._messages.setdefault(job_id, _Message(job.get("status_ts")))
        if job["kind"] == "classify":
            if final:
                await self._prediction(job)
        elif job["kind"] == "chat":
            blocks = _chat_blocks(job)
            delay = await self._show(job, message, blocks, final)
            if delay:
                return delay
        else:
            view = job_view(job)
            blocks = job_failed_blocks(view) if job["status"] == "failed" else \
                job_status_blocks(view)
            delay = await self._show(job, message, blocks, final)
            if delay:
                return delay
            if final and job["status"] == "succeeded":
                await self._results(job, message)
        if final:
            await self.store.mark_reported(int(job["id"]), self.replica_id)
            self._finish(job)
        return None

    async def _claim(self, job_id: int) -> bool:
        """Whether this replica reports the job: claims it, or renews its claim when half of
        the lease has passed."""
        now = time.monotonic()
        if self._claims.get(job_id, 0.0) > now:
            return True
        if not await self.store.claim_report(job_id, self.replica_id, self.lease_seconds):
            self._claims.pop(job_id, None)
            return False
        self._claims[job_id] = now + self.lease_seconds / 2
        return True

    def _finish(self, job: Row) -> None:
        job_id = int(job["id"])
        self._finished.add(job_id)
        self._messages.pop(job_id, None)
        self._claims.pop(job_id, None)
        self.throttle.forget(str(job_id))
        started, ended = _time(job.get("started_at")), _time(job.get("finished_at"))
        if started and ended:
            self.rt.metrics.job_seconds.observe((ended - started).total_seconds(),
                                                kind=str(job["kind"]), status=str(job["status"]))

    async def _show(self, job: Row, message: _Message, blocks: list[Block],
                    final: bool) -> float | None:
        """Post the job's message, or update it (throttled); seconds to wait if held back."""
        rendered = json.dumps(blocks, sort_keys=True)
        if rendered == message.rendered or (message.unreachable and not final):
            return None
        team, key = str(job.get("team_id") or ""), str(job["id"])
        if message.ts is None:
            ts = await self._post(job, blocks, thread_ts=job.get("thread_ts"))
            message.rendered = rendered
            if ts is None:
                message.unreachable = True
                return None
            message.ts = ts
            self.throttle.mark(key)
            await self.store.set_status_ts(int(job["id"]), ts)
            return None
        if final:
            await self.throttle.final_update(team, key)
        else:
            wait = self.throttle.try_update(team, key)
            if wait:
                self.rt.metrics.deferred_updates.inc()
                return wait
        message.rendered = rendered
        try:
            await self.client.chat_update(channel=job["channel_id"], ts=message.ts,
                                          blocks=blocks, text=fallback_text(blocks))
            self.rt.metrics.slack_calls.inc(method="chat.update", outcome="ok")
        except SlackApiError as error:
            self.rt.metrics.slack_calls.inc(method="chat.update", outcome="error")
            log.warning("chat.update of job %s failed: %s", job["id"],
                        error.response.get("error"))
            if error.response.get("error") == "message_not_found":
                message.ts, message.rendered = None, ""
                return 0.5
        return None

    async def _post(self, job: Row, blocks: list[Block], thread_ts: str | None) -> str | None:
        """chat.postMessage in the job's channel; where the bot can't post, the final answer
        goes through the command's `response_url`. Returns the ts, or None."""
        text = fallback_text(blocks)
        try:
            response = await self.client.chat_postMessage(
                channel=job["channel_id"], thread_ts=thread_ts, blocks=blocks, text=text)
            self.rt.metrics.slack_calls.inc(method="chat.postMessage", outcome="ok")
            return str(response["ts"])
        except SlackApiError as error:
            code = error.response.get("error")
            self.rt.metrics.slack_calls.inc(method="chat.postMessage", outcome="error")
            log.warning("chat.postMessage for job %s failed: %s", job["id"], code)
            if code in _UNREACHABLE and job.get("response_url") and job["status"] in FINAL:
                await self._respond(job, blocks, text)
            return None

    async def _respond(self, job: Row, blocks: list[Block], text: str) -> None:
        try:
            await AsyncWebhookClient(job["response_url"]).send(
                text=text, blocks=blocks, response_type="in_channel")
        except Exception:  # the response URL may have expired
            log.warning("response_url for job %s failed", job["id"], exc_info=True)

    async def _prediction(self, job: Row) -> None:
        if job["status"] == "succeeded":
            params = job.get("params") or {}
            model = params.get("model") or ("minilm" if params.get("labels") else "sentiment")
            predictions = (job.get("result") or {}).get("predictions") or []
            blocks = prediction_blocks(predictions, model=model)
            if job.get("user_id"):
                blocks = fit([*blocks, context([f"asked by {mention(job['user_id'])}"])])
        elif job["status"] == "failed":
            blocks = job_failed_blocks(job_view(job))
        else:
            return
        await self._post(job, blocks, thread_ts=job.get("thread_ts"))

    async def _results(self, job: Row, message: _Message) -> None:
        """Metrics in the status message's thread, then the plots uploaded there."""
        result = job.get("result") or {}
        if job["kind"] not in ("finetune", "evaluate") or not result:
            return
        thread = job.get("thread_ts") or message.ts
        if message.unreachable:
            return
        blocks = job_result_blocks(job_view(job), result)
        await self._post(job, blocks, thread_ts=thread)
        uploads = self._plots(result)
        if not uploads:
            return
        try:
            await self.client.files_upload_v2(channel=job["channel_id"], thread_ts=thread,
                                              file_uploads=uploads)
            self.rt.metrics.slack_calls.inc(method="files.upload_v2", outcome="ok")
        except SlackApiError as error:
            self.rt.metrics.slack_calls.inc(method="files.upload_v2", outcome="error")
            log.warning("uploading the plots of job %s failed: %s", job["id"],
                        error.response.get("error"))

    def _plots(self, result: Row) -> list[dict[str, Any]]:
        """Plot files inside the artifact root (a result can't make the bot upload others)."""
        plots = result.get("plots") or (result.get("metrics") or {}).get("plots") or {}
        root = Path(self.rt.settings.artifacts).resolve()
        uploads = []
        for name, path in plots.items():
            file = Path(str(path)).resolve()
            if not file.is_relative_to(root) or not file.is_file():
                log.warning("plot %s at %s is not a file under %s; not uploaded", name, path, root)
                continue
            title = str(name).replace("_", " ")
            uploads.append({"file": str(file), "filename": file.name, "title": title,
                            "alt_txt": title})
        return uploads


def _chat_blocks(job: Row) -> list[Block]:
    status, result = job["status"], job.get("result") or {}
    params = job.get("params") or {}
    model = result.get("model") or params.get("model")
    if status == "succeeded":
        blocks = chat_reply_blocks(str(result.get("reply") or ""), model=model)
    elif status == "failed":
        blocks = job_failed_blocks(job_view(job))
    elif status == "cancelled":
        blocks = job_status_blocks(job_view(job))
    else:
        partial = str((job.get("progress") or {}).get("partial_reply") or "")
        blocks = chat_reply_blocks(partial, model=model, streaming=True)
    if job.get("thread_ts"):  # a reply under the question
        return blocks
    # `/lm chat` is invisible to the channel: show what was asked, and by whom
    messages = params.get("messages") or []
    question = messages[-1].get("content", "") if isinstance(messages, list) and messages and \
        isinstance(messages[-1], dict) else str(messages)
    asker = f"{mention(job['user_id'])} asked: " if job.get("user_id") else ""
    return fit([context([asker + escape(truncate(" ".join(question.split()), 300))]), *blocks])


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
