"""Posting a job's messages in Slack: the one message a job has (posted, then updated through
the throttle), the fallback to the command's `response_url` where the bot can't post, and the
follow-up in the message's thread (results, then the charts uploaded there). Kind-blind: what
the blocks say comes from the kind's presenter (`bot.kinds`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.blocks import fallback_text
from bot.blocks_base import Block
from bot.metrics import Metrics
from bot.throttle import UpdateThrottle
from storage.tables import JobPublic

log = logging.getLogger(__name__)
FINAL = frozenset({"succeeded", "failed", "cancelled"})
_UNREACHABLE = frozenset({"not_in_channel", "channel_not_found", "is_archived"})


class JobMessage:
    """What the bot knows about a job's message: its ts, what it shows, whether it can be
    posted at all."""

    def __init__(self, ts: str | None) -> None:
        self.ts = ts
        self.rendered = ""
        self.unreachable = False


class JobMessenger:
    """Slack calls for job messages, counted in the bot's metrics."""

    def __init__(self, client: AsyncWebClient, throttle: UpdateThrottle, metrics: Metrics,
                 artifacts: Path) -> None:
        self.client, self.throttle, self.metrics = client, throttle, metrics
        self.artifacts = Path(artifacts).resolve()

    async def show(self, job: JobPublic, message: JobMessage, blocks: list[Block],
                   final: bool) -> tuple[bool, float | None]:
        """Post the job's message, or update it (throttled). Returns whether it was posted
        now (its ts is new) and the seconds to wait if the update was held back."""
        rendered = json.dumps(blocks, sort_keys=True)
        if rendered == message.rendered or (message.unreachable and not final):
            return False, None
        team, key = job.team_id or "", str(job.id)
        if message.ts is None:
            ts = await self.post(job, blocks, thread_ts=job.thread_ts)
            message.rendered = rendered
            if ts is None:
                message.unreachable = True
                return False, None
            message.ts = ts
            self.throttle.mark(key)
            await self.dismiss_ack(job)
            return True, None
        if final:
            await self.throttle.final_update(team, key)
        else:
            wait = self.throttle.try_update(team, key)
            if wait:
                self.metrics.deferred_updates.inc()
                return False, wait
        message.rendered = rendered
        try:
            await self.client.chat_update(channel=job.channel_id, ts=message.ts,
                                          blocks=blocks, text=fallback_text(blocks))
            self.metrics.slack_calls.inc(method="chat.update", outcome="ok")
        except SlackApiError as error:
            self.metrics.slack_calls.inc(method="chat.update", outcome="error")
            log.warning("chat.update of job %s failed: %s", job.id,
                        error.response.get("error"))
            if error.response.get("error") == "message_not_found":
                message.ts, message.rendered = None, ""
                return False, 0.5
        return False, None

    async def post(self, job: JobPublic, blocks: list[Block], thread_ts: str | None) -> str | None:
        """chat.postMessage in the job's channel; where the bot can't post, the final answer
        goes through the command's `response_url`. Returns the ts, or None."""
        text = fallback_text(blocks)
        try:
            response = await self.client.chat_postMessage(
                channel=job.channel_id, thread_ts=thread_ts, blocks=blocks, text=text)
            self.metrics.slack_calls.inc(method="chat.postMessage", outcome="ok")
            return str(response["ts"])
        except SlackApiError as error:
            code = error.response.get("error")
            self.metrics.slack_calls.inc(method="chat.postMessage", outcome="error")
            log.warning("chat.postMessage for job %s failed: %s", job.id, code)
            if code in _UNREACHABLE and job.response_url and job.status in FINAL:
                await self._respond(job, blocks, text)
            return None

    async def dismiss_ack(self, job: JobPublic) -> None:
        """Delete the command's "⏳ Classifying…" acknowledgement (ephemeral) now that the
        job's own message is in the channel (jobs started by a button keep no response_url)."""
        if not job.response_url:
            return
        try:
            await AsyncWebhookClient(job.response_url).send_dict({"delete_original": True})
        except Exception:  # expired, or the acknowledgement is gone already
            log.info("deleting the acknowledgement of job %s failed", job.id, exc_info=True)

    async def _respond(self, job: JobPublic, blocks: list[Block], text: str) -> None:
        try:
            await AsyncWebhookClient(job.response_url or "").send(
                text=text, blocks=blocks, response_type="in_channel")
        except Exception:  # the response URL may have expired
            log.warning("response_url for job %s failed", job.id, exc_info=True)

    async def follow_up(self, job: JobPublic, message: JobMessage, blocks: list[Block] | None,
                        plots: bool) -> None:
        """Results in the message's thread, then the result's charts uploaded there."""
        if message.unreachable or not blocks:
            return
        thread = job.thread_ts or message.ts
        await self.post(job, blocks, thread_ts=thread)
        uploads = self._plots(job.result or {}) if plots else []
        if not uploads:
            return
        try:
            await self.client.files_upload_v2(channel=job.channel_id, thread_ts=thread,
                                              file_uploads=uploads)
            self.metrics.slack_calls.inc(method="files.upload_v2", outcome="ok")
        except SlackApiError as error:
            self.metrics.slack_calls.inc(method="files.upload_v2", outcome="error")
            log.warning("uploading the plots of job %s failed: %s", job.id,
                        error.response.get("error"))

    def _plots(self, result: dict[str, Any]) -> list[dict[str, Any]]:
        """Plot files inside the artifact root (a result can't make the bot upload others)."""
        plots = result.get("plots") or (result.get("metrics") or {}).get("plots") or {}
        uploads = []
        for name, path in plots.items():
            file = Path(str(path)).resolve()
            if not file.is_relative_to(self.artifacts) or not file.is_file():
                log.warning("plot %s at %s is not a file under %s; not uploaded", name, path,
                            self.artifacts)
                continue
            title = str(name).replace("_", " ")
            uploads.append({"file": str(file), "filename": file.name, "title": title,
                            "alt_txt": title})
        return uploads
