"""Files shared in Slack become data sets: good, malformed, too large and wrong-type uploads,
the same file twice, dialogue data, the buttons under the report, and the download rules."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest

from bot import uploads
from bot.uploads import allowed_url, dataset_name, inspect
from localslack import ADMIN_DM_ID, GENERAL_CHANNEL_ID

ALICE, BOB = "UALICE001", "UBOB00001"
pytestmark = pytest.mark.asyncio
GOOD = "text,label\n" + "".join(f"great product {i},pos\nterrible service {i},neg\n"
                                for i in range(5))


async def _share(bot, name, content, **kwargs):
    sent = await bot.slack.deliver.file_share(name, content, **kwargs)
    assert all(d.status == 200 for d in sent)
    return sent[0].payload["event"]["ts"]


async def _reply(bot, ts, channel=GENERAL_CHANNEL_ID):
    replies = await bot.wait(lambda: bot.ws.replies(channel, ts)[1:])
    return bot.text(replies[0]), replies[0]


def _stored(bot):
    root = bot.settings.artifacts / "datasets"
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_good_upload_becomes_a_dataset(bot):
    ts = await _share(bot, "support tickets.csv", GOOD, user=BOB)
    text, _ = await _reply(bot, ts)
    assert "Ready to use" in text and "*support-tickets*" in text and "10 rows" in text
    assert "Fine-tune" in text and "Evaluate" in text
    digest = hashlib.sha256(GOOD.encode()).hexdigest()
    stored = bot.settings.artifacts / "datasets" / digest / "support tickets.csv"
    assert stored.read_text() == GOOD
    download = bot.ws.calls("download")[0]
    assert download.headers["Authorization"] == f"Bearer {bot.slack.bot_token}"
    [row] = bot.db_call(lambda s: __import__("storage.datasets").datasets.list_datasets(
        session=s, workspace_id=bot.workspace_id()))
    assert (row.name, row.task, row.n_rows, row.uploader) == ("support-tickets", "classify",
                                                               10, BOB)
    assert row.validation_report["label_counts"] == {"neg": 5, "pos": 5}
    assert [e.target for e in bot.audit("dataset.create")] == ["support-tickets"]
    assert "*support-tickets*" in bot.ack_text(await bot.command("datasets"))
    # the same content again: no new data set, the reply says so
    ts2 = await _share(bot, "copy.csv", GOOD)
    text2, _ = await _reply(bot, ts2)
    assert "uploaded before as data set 'support-tickets'" in text2
    assert len(bot.audit("dataset.create")) == 1 and _stored(bot) == ["support tickets.csv"]


async def test_dialogue_upload(bot):
    rows = [{"messages": [{"role": "user", "content": f"q{i}"},
                          {"role": "assistant", "content": f"a{i}"}]} for i in range(3)]
    ts = await _share(bot, "faq.jsonl", "\n".join(json.dumps(r) for r in rows), channel=ADMIN_DM_ID)
    text, _ = await _reply(bot, ts, channel=ADMIN_DM_ID)
    assert "Ready to use" in text and "chat" in text


async def test_malformed_upload_gets_reasons_and_nothing_is_kept(bot):
    ts = await _share(bot, "one-label.csv", "text,label\na,x\nb,x\n\"unclosed,x\n")
    text, _ = await _reply(bot, ts)
    assert "Can't be used" in text and "Nothing was kept" in text
    assert "Fine-tune" not in text
    ts = await _share(bot, "cols.csv", "foo,bar\n1,2\n")
    text, _ = await _reply(bot, ts)
    assert "no text column among: foo, bar" in text
    assert _stored(bot) == [] and bot.audit("dataset.create") == []
    assert "No data sets yet" in bot.ack_text(await bot.command("datasets"))


async def test_too_large_upload_is_not_downloaded(bot, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_BYTES", 100)
    ts = await _share(bot, "big.csv", GOOD)
    text, _ = await _reply(bot, ts)
    assert "big.csv: the file is 0.0 MB; data sets may be at most" in text
    assert bot.ws.calls("download") == [] and _stored(bot) == []


async def test_downloads_only_from_slack_and_within_the_limit(bot):
    with pytest.raises(uploads.UploadError, match="not on Slack's file server"):
        await uploads.download("http://elsewhere.example/x.csv", token="t",
                               api_url=bot.slack.api_url)
    file = bot.ws.create_file("big.csv", user=BOB, content=GOOD.encode())
    url = bot.ws.file_json(file)["url_private_download"]
    with pytest.raises(uploads.UploadError, match="over"):
        await uploads.download(url, token=bot.slack.bot_token, api_url=bot.slack.api_url,
                               limit=50)


async def test_wrong_types(bot):
    ts = await _share(bot, "data.xlsx", b"PK\x03\x04 spreadsheet")
    text, _ = await _reply(bot, ts)
    assert "CSV, TSV, JSONL or JSON" in text and "save a spreadsheet as CSV" in text
    ts_png = await _share(bot, "screenshot.png", b"\x89PNG")
    dm_ts = await _share(bot, "photo.png", b"\x89PNG", channel=ADMIN_DM_ID)
    text, _ = await _reply(bot, dm_ts, channel=ADMIN_DM_ID)
    assert "CSV, TSV, JSONL or JSON" in text
    await asyncio.sleep(0.3)
    assert bot.ws.replies(GENERAL_CHANNEL_ID, ts_png)[1:] == []  # a screenshot draws no reply
    assert bot.ws.calls("download") == [] and _stored(bot) == []


async def test_report_buttons_start_one_job_each(bot):
    ts = await _share(bot, "tickets.csv", GOOD)
    _, report = await _reply(bot, ts)
    refused = await bot.slack.deliver.block_actions("lmops_finetune", message_ts=report.ts,
                                                    user=BOB)
    assert refused.ok
    await bot.wait(lambda: any("Only trainers and admins may start fine-tunes" in t
                               for t in bot.ephemeral_texts(BOB)))
    for _ in range(2):  # a double click
        await bot.slack.deliver.block_actions("lmops_finetune", message_ts=report.ts,
                                              user=ALICE)
    await bot.wait(lambda: any("started already" in t for t in bot.ephemeral_texts(ALICE)))
    [job] = bot.jobs()
    assert job.kind == "finetune" and job.params["data"].endswith("tickets.csv")
    assert job.thread_ts == ts  # the report is in the upload's thread: so is the job
    await bot.slack.deliver.block_actions("lmops_eval", message_ts=report.ts, user=ALICE)
    jobs = await bot.wait_jobs(2)
    assert jobs[0].kind == "evaluate" and jobs[0].params["model"] == "minilm"


async def test_file_shared_event_is_handled_once(bot):
    ts = await _share(bot, "tickets.csv", GOOD)  # message(file_share) + file_shared
    await _reply(bot, ts)
    await asyncio.sleep(0.3)
    assert len(bot.ws.replies(GENERAL_CHANNEL_ID, ts)) == 2
    assert len(bot.ws.calls("download")) == 1
    # a file_shared event alone (no message event) is handled through files.info
    file = bot.ws.create_file("solo.csv", user=BOB, content=GOOD.replace("great", "good"))
    posted = bot.ws.post_message(GENERAL_CHANNEL_ID, user=BOB, subtype="file_share",
                                 files=[file.id])
    from localslack import payloads
    event = payloads.file_shared_event(bot.ws, file, channel=GENERAL_CHANNEL_ID, user=BOB,
                                       event_ts=posted.ts)
    await bot.slack.deliver.event_callback(event)
    text, _ = await _reply(bot, posted.ts)
    assert "*solo*" in text


async def test_download_rules_and_names():
    api = "https://slack.com/api/"
    assert allowed_url("https://files.slack.com/files-pri/T1-F1/x.csv", api)
    assert not allowed_url("http://files.slack.com/files-pri/T1-F1/x.csv", api)
    assert allowed_url("https://slack.com/files-pri/x.csv", api)
    assert not allowed_url("https://evil.example/x.csv", api)
    assert not allowed_url("https://slack.com.evil.example/x.csv", api)
    local = "http://127.0.0.1:5000/api/"
    assert allowed_url("http://127.0.0.1:5000/files-pri/x", local)
    assert not allowed_url("http://127.0.0.1:6000/files-pri/x", local)
    assert dataset_name("Support Tickets (v2).csv") == "Support-Tickets-v2"
    assert dataset_name("...csv") == "dataset"


async def test_inspect_names_rows():
    report, columns = inspect(b"text,label\na,x\nb,y\n,x\nc,x\nd,y\n", "t.csv")
    assert report["ok"] and columns == ["text", "label"] and report["empty_rows"] == [4]
    report, _ = inspect(b"\xff\xfe bad", "t.csv")
    assert not report["ok"] and "UTF-16" in report["problems"][0]
