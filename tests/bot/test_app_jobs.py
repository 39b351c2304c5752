"""Jobs from Slack to the queue and back: predictions, streamed chat replies, mentions and DMs,
fine-tune status messages with progress, results, plots and buttons, and failures. The worker
is simulated by writing progress and results with `storage.queue`."""

from __future__ import annotations

import asyncio

import pytest

from localslack import ADMIN_DM_ID, ADMIN_USER_ID, BOT_USER_ID, GENERAL_CHANNEL_ID

ALICE, BOB = "UALICE001", "UBOB00001"
pytestmark = pytest.mark.asyncio
PREDICTION = {"text": "I love it", "label": "pos", "score": 0.93,
              "scores": {"pos": 0.93, "neg": 0.07}, "truncated": False}


async def test_classify_posts_the_prediction(bot):
    ack = bot.ack_text(await bot.command("classify I love it"))
    assert "Classifying" in ack
    [job] = await bot.wait_jobs(1)
    assert job.kind == "classify" and job.params["texts"] == ["I love it"]
    assert job.params["model"] is None and job.priority == 0  # the classify kind's priority
    assert job.channel_id == GENERAL_CHANNEL_ID and job.user_id == ADMIN_USER_ID
    bot.finish(bot.claim().id, {"predictions": [PREDICTION], "model": "sentiment"})
    [message] = await bot.wait(lambda: bot.posted("*pos*"))
    text = bot.text(message)
    assert "93%" in text and "neg 7%" in text and "model `sentiment`" in text
    assert message.user == BOT_USER_ID and not message.thread_ts


async def test_classify_options_and_promoted_model(bot):
    await bot.command('classify labels="bug, feature" the app crashes')
    [job] = await bot.wait_jobs(1)
    assert (job.params["texts"], job.params["labels"]) == (["the app crashes"], ["bug", "feature"])
    bot.add_model("tix-v1")
    await bot.command("promote tix-v1")
    await bot.command("classify hello")
    jobs = await bot.wait_jobs(2)
    assert (jobs[0].params["texts"], jobs[0].params["model"]) == (["hello"], "tix-v1")
    await bot.command("classify model=smollm2 hello")
    await bot.wait(lambda: any("is a chat model" in t for t in bot.ephemeral_texts()))


async def test_classify_failure_is_one_short_message(bot):
    await bot.command("classify hi")
    await bot.wait_jobs(1)
    job = bot.claim()
    bot.fail(job.id, "Traceback (most recent call last):\n  ...\nModelLoadError: out of memory")
    [message] = await bot.wait(lambda: bot.posted("failed"))
    await asyncio.sleep(0.2)
    assert len(bot.posted("failed")) == 1
    assert f"Classification #{job.id} failed*: ModelLoadError: out of memory" in bot.text(message)


async def test_chat_reply_is_streamed_by_updates(bot):
    assert "Thinking" in bot.ack_text(await bot.command("chat How do I reset it?"))
    [job] = await bot.wait_jobs(1)
    assert job.params["messages"] == [{"role": "user", "content": "How do I reset it?"}]
    [placeholder] = await bot.wait(lambda: bot.posted("typing"))
    job = bot.claim()
    bot.progress(job.id, {"partial_reply": "Open Settings"})
    await bot.wait(lambda: bot.posted("Open Settings"), timeout=5)
    bot.finish(job.id, {"reply": "Open Settings, then Reset. <!channel>", "model": "smollm2"})
    await bot.wait(lambda: "Reset" in bot.text(bot.ws.get_message(GENERAL_CHANNEL_ID,
                                                                    placeholder.ts)))
    final = bot.ws.get_message(GENERAL_CHANNEL_ID, placeholder.ts)
    assert "typing" not in bot.text(final) and "model `smollm2`" in bot.text(final)
    assert "<@U_ADMIN> asked: How do I reset it?" in bot.text(final)  # the command is invisible
    assert "<!channel>" not in bot.text(final) and "&lt;!channel&gt;" in bot.text(final)
    assert len([m for m in bot.messages() if m.user == BOT_USER_ID]) == 1
    assert len(bot.ws.calls("chat.update")) >= 2


async def test_mention_gets_a_reply_in_its_thread(bot):
    sent = await bot.slack.deliver.message(f"<@{BOT_USER_ID}> what is lmops?", user=BOB)
    assert [d.status for d in sent] == [200, 200]  # message + app_mention
    [job] = await bot.wait_jobs(1)
    mention_ts = sent[0].payload["event"]["ts"]
    assert job.thread_ts == mention_ts and job.user_id == BOB
    assert job.params["messages"][0]["content"] == "what is lmops?"
    bot.finish(bot.claim().id, {"reply": "A Slack bot.", "model": "smollm2"})
    await bot.wait(lambda: bot.posted("A Slack bot."))
    replies = bot.ws.replies(GENERAL_CHANNEL_ID, mention_ts)
    assert bot.text(replies[1]).startswith("A Slack bot.")
    await asyncio.sleep(0.2)
    assert len(bot.jobs()) == 1


async def test_dm_gets_a_reply_and_channel_chatter_is_ignored(bot):
    await bot.slack.deliver.message("just chatting", user=BOB)  # no mention: not for the bot
    await bot.slack.deliver.message("hello bot", channel=ADMIN_DM_ID)
    [job] = await bot.wait_jobs(1)
    assert job.channel_id == ADMIN_DM_ID and job.params["messages"][0]["content"] == "hello bot"
    bot.finish(bot.claim().id, {"reply": "Hi!", "model": "smollm2"})
    await bot.wait(lambda: bot.posted("Hi!", channel=ADMIN_DM_ID))


async def _status(bot, job_id, needle):
    def found():
        return [m for m in bot.messages() if f"#{job_id}" in bot.text(m) and needle in
                bot.text(m) and m.thread_ts in (None, m.ts)]
    return (await bot.wait(found, timeout=5))[0]


async def test_finetune_progress_result_plots_and_promote(bot):
    bot.add_dataset("tickets")
    await bot.command("finetune tickets name=tix-v1 epochs=2", user=ALICE)
    [job] = await bot.wait_jobs(1)
    status = await _status(bot, job.id, "queued")
    assert "Cancel" in bot.text(status) and "`tix-v1` on `tickets`" in bot.text(status)
    job = bot.claim()
    progress = {"step": 5, "total_steps": 10, "epoch": 1.0, "loss": 0.4321, "eta_seconds": 30,
                "validation": {"accuracy": 0.8}}
    bot.progress(job.id, progress)
    await _status(bot, job.id, "▓▓▓▓▓░░░░░ 50%")
    stored = bot.jobs()[0]
    assert stored.status_ts == status.ts
    refused = await bot.slack.deliver.block_actions("lmops_cancel", message_ts=status.ts,
                                                    user=BOB)
    assert refused.status == 200
    await bot.wait(lambda: any("Only the job's owner" in t for t in bot.ephemeral_texts(BOB)))
    plots = bot.settings.artifacts / "jobs" / str(job.id) / "plots"
    plots.mkdir(parents=True)
    (plots / "loss.png").write_bytes(b"\x89PNG loss")
    (plots / "confusion_matrix.png").write_bytes(b"\x89PNG cm")
    bot.add_model("tix-v1")  # the worker registers the model
    result = {"name": "tix-v1", "path": "/m", "task": "classify", "base": "minilm",
              "method": "lora", "train_seconds": 12.5, "samples_per_second": 40.0,
              "metrics": {"n": 40, "accuracy": 0.9, "macro_f1": 0.88, "loss": 0.3,
                          "plots": {"loss": str(plots / "loss.png"),
                                    "confusion_matrix": str(plots / "confusion_matrix.png"),
                                    "elsewhere": "/etc/passwd"}}}
    bot.finish(job.id, result)
    await _status(bot, job.id, "done")
    thread = await bot.wait(lambda: [m for m in bot.ws.replies(GENERAL_CHANNEL_ID, status.ts)[1:]
                                     if m.files], timeout=5)
    files = [bot.ws.get_file(f) for m in thread for f in m.files]
    assert sorted(f.name for f in files) == ["confusion_matrix.png", "loss.png"]
    [result_message] = [m for m in bot.ws.replies(GENERAL_CHANNEL_ID, status.ts)
                        if "finished" in bot.text(m)]
    assert "Accuracy" in bot.text(result_message) and "90%" in bot.text(result_message)
    await bot.slack.deliver.block_actions("lmops_promote", message_ts=result_message.ts,
                                          user=ALICE)
    await bot.wait(lambda: bot.posted("default model for its task"))
    assert [e.target for e in bot.audit("model.promote")] == ["tix-v1"]


async def test_cancel_button_by_owner(bot):
    bot.add_dataset("tickets")
    await bot.command("finetune tickets", user=ALICE)
    [job] = await bot.wait_jobs(1)
    status = await _status(bot, job.id, "queued")
    await bot.slack.deliver.block_actions("lmops_cancel", message_ts=status.ts, user=ALICE)
    await _status(bot, job.id, "cancelled")
    assert bot.jobs()[0].status == "cancelled"


async def test_failed_job_turns_its_status_message_into_the_reason(bot):
    bot.add_dataset("tickets")
    await bot.command("eval minilm tickets")
    [job] = await bot.wait_jobs(1)
    status = await _status(bot, job.id, "queued")
    job = bot.claim()
    bot.fail(job.id, "DataError: tickets.csv: row 3: no label")
    message = await _status(bot, job.id, "failed")
    assert message.ts == status.ts
    assert f"Evaluation #{job.id} failed*: DataError: tickets.csv: row 3: no label" in \
        bot.text(message)
    await asyncio.sleep(0.2)
    assert bot.ws.replies(GENERAL_CHANNEL_ID, status.ts)[1:] == []
