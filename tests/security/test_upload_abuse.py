"""Uploads that amplify or break the bot (issue 11, item 4 and two of item 8).

Against the public surface: the real Bolt app served over HTTP with the local Slack
(`localslack`) as Slack's Web API, files shared in a channel as a user shares them, and signed
`/lm` commands (tests/bot/conftest.py's harness; here the bot runs in the test's process, so
the test's RSS is the bot's). A 1,000,000-row CSV is refused with one line naming the row
limit while the bot's memory stays flat and `/lm help` is acked meanwhile; the report stored for
a file full of duplicate rows holds counts and the first few row numbers; a deeply nested JSON
file and a 300-character file name each get an answer, and a refused file shared again is
answered again.

(The file is not named test_uploads.py: tests/bot has one, and test modules' names must be
unique without __init__.py files.)
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Self

import psutil
import pytest

from localslack import GENERAL_CHANNEL_ID, payloads
from storage import datasets

_HARNESS = Path(__file__).resolve().parents[1] / "bot" / "conftest.py"
_spec = importlib.util.spec_from_file_location("lmops_bot_harness", _HARNESS)
harness = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
if not hasattr(harness, "bot"):
    _spec.loader.exec_module(harness)
template_db, db_url, bot = harness.template_db, harness.db_url, harness.bot

BOB = harness.BOB
pytestmark = pytest.mark.asyncio
GOOD = "text,label\n" + "".join(f"great product {i},pos\nterrible service {i},neg\n"
                                for i in range(5))


async def share(bot, name: str, content: bytes | str, **kwargs) -> tuple[str, str]:
    """Share a file in #general: (the message's ts, the file's id)."""
    sent = await bot.slack.deliver.file_share(name, content, **kwargs)
    assert all(d.status == 200 for d in sent)
    event = sent[0].payload["event"]
    return event["ts"], event["files"][0]["id"]


async def reply(bot, ts: str, timeout: float = 10.0) -> str:
    replies = await bot.wait(lambda: bot.ws.replies(GENERAL_CHANNEL_ID, ts)[1:], timeout=timeout)
    return bot.text(replies[0])


class PeakRSS:
    """The process's peak resident memory while the block runs, sampled every 10 ms."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = self.base = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self) -> Self:
        gc.collect()
        self.base = self.peak = self.proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 2**20


async def test_a_million_row_csv_is_refused_with_flat_memory_and_prompt_acks(bot):
    content = ("text,label\n" + "".join(f"r{i % 500},{i & 1}\n" for i in range(1_000_000))
               ).encode()
    assert 6_000_000 < len(content) < 8_000_000
    await bot.command("help")  # warm up: the workspace, the connections
    acks: list[float] = []
    with PeakRSS() as rss:
        ts, _ = await share(bot, "million.csv", content, user=BOB)
        while not bot.ws.replies(GENERAL_CHANNEL_ID, ts)[1:] and len(acks) < 600:
            started = time.perf_counter()
            delivery = await bot.command("help")
            acks.append(time.perf_counter() - started)
            assert "/lm" in bot.ack_text(delivery)
            await asyncio.sleep(0.1)
        text = await reply(bot, ts)
    assert rss.growth_mb < 100, f"the bot grew by {rss.growth_mb:.0f} MB"
    assert acks and max(acks) < 1.5, f"acks: median {statistics.median(acks):.2f} s, " \
                                     f"max {max(acks):.2f} s"
    assert "million.csv has more than 200,000 rows; data sets may have at most 200,000" in text
    assert "Can't be used" in text
    assert bot.audit("dataset.create") == []


async def test_the_stored_report_of_many_duplicates_keeps_counts_and_first_rows(bot):
    rows = [f"ticket about topic {i % 40},{'pos' if i % 40 < 20 else 'neg'}" for i in range(5000)]
    ts, _ = await share(bot, "dupes.csv", "text,label\n" + "\n".join(rows) + "\n", user=BOB)
    text = await reply(bot, ts)
    assert "Ready to use" in text and "4960 duplicate rows, skipped: rows 42 (same as 2)" in text
    [row] = bot.db_call(lambda s: datasets.list_datasets(session=s,
                                                          workspace_id=bot.workspace_id()))
    report = row.validation_report
    assert report["n"] == 5000 and report["usable"] == 40
    assert report["counts"]["duplicate_rows"] == 4960 == report["counts"]["dropped_rows"]
    assert report["duplicate_rows"][:2] == [{"row": 42, "same_as": 2}, {"row": 43, "same_as": 3}]
    assert len(report["duplicate_rows"]) <= 10 and len(report["dropped_rows"]) <= 10
    assert len(json.dumps(report)) < 4000
    assert "*dupes*" in bot.ack_text(await bot.command("datasets"))


async def test_nested_json_gets_an_answer_and_is_answered_again_when_shared_again(
        bot, monkeypatch):
    from bot import uploads

    monkeypatch.setattr(uploads, "RETRY_AFTER", 0.0, raising=False)
    deep = "[" * 200_000 + "]" * 200_000  # 400 KB
    ts, file_id = await share(bot, "deep.json", deep)
    text = await reply(bot, ts)
    assert "deep.json is nested too deeply" in text and "Nothing was kept" in text
    await asyncio.sleep(0.3)  # the share's second event (file_shared) is not answered again
    assert len(bot.ws.replies(GENERAL_CHANNEL_ID, ts)) == 2
    posted = bot.ws.post_message(GENERAL_CHANNEL_ID, user=BOB, subtype="file_share",
                                 files=[file_id])
    await bot.slack.deliver.event_callback(payloads.message_event(bot.ws, posted))
    assert "nested too deeply" in await reply(bot, posted.ts)


async def test_a_300_character_file_name_is_stored_shortened(bot):
    name = "q" * 296 + ".csv"
    ts, _ = await share(bot, name, GOOD, user=BOB)
    text = await reply(bot, ts)
    assert "Ready to use" in text and "10 rows" in text
    assert "the file name is long; it was stored as" in text
    [row] = bot.db_call(lambda s: datasets.list_datasets(session=s,
                                                          workspace_id=bot.workspace_id()))
    stored = Path(row.stored_path)
    assert stored.read_text() == GOOD and stored.suffix == ".csv"
    assert len(stored.name.encode()) <= 120 and row.file_name == stored.name
    assert len(row.name) <= 64
    # and a long name of a file that can't be used is answered, shortened
    ts, _ = await share(bot, "z" * 296 + ".json", "[" * 5000 + "]" * 5000)
    text = await reply(bot, ts)
    assert "nested too deeply" in text and "z" * 300 not in text
