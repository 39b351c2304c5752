"""Slack's retries never make a second job, and one workspace (team) never sees another's data.
"""

from __future__ import annotations

import asyncio

import pytest

from localslack import BOT_USER_ID, GENERAL_CHANNEL_ID, LocalSlack, Team, Workspace

pytestmark = pytest.mark.asyncio


async def test_event_retries_make_one_job(bot):
    sent = await bot.slack.deliver.message(f"<@{BOT_USER_ID}> hello?")
    for num in (1, 2):
        for delivery in sent:  # message and app_mention, each retried
            retried = await bot.slack.deliver.retry(delivery, num=num)
            assert retried.status == 200
    await asyncio.sleep(0.3)
    [job] = bot.jobs()
    assert job.idempotency_key.endswith(f":chat:{GENERAL_CHANNEL_ID}:{sent[0].payload['event']['ts']}")
    bot.finish(bot.claim().id, {"reply": "Yes.", "model": "smollm2"})
    await bot.wait(lambda: bot.posted("Yes."))
    await asyncio.sleep(0.3)
    assert len(bot.posted("Yes.")) == 1


async def test_slash_command_redelivery_makes_one_job(bot):
    delivery = await bot.command("classify twice")
    again = await bot.slack.deliver.retry(delivery, num=1)
    assert again.status == 200
    await asyncio.sleep(0.3)
    assert len(bot.jobs()) == 1


async def test_upload_retry_makes_one_dataset(bot):
    sent = await bot.slack.deliver.file_share("t.csv", "text,label\na,x\nb,x\nc,y\nd,y\n",
                                              file_shared_event=False)
    await bot.slack.deliver.retry(sent[0], num=1)
    ts = sent[0].payload["event"]["ts"]
    await bot.wait(lambda: bot.ws.replies(GENERAL_CHANNEL_ID, ts)[1:])
    await asyncio.sleep(0.3)
    assert len(bot.ws.replies(GENERAL_CHANNEL_ID, ts)) == 2
    assert len(bot.audit("dataset.create")) == 1


async def test_workspaces_are_isolated(bot):
    bot.add_dataset("tickets")
    bot.add_model("tix-v1")
    await bot.command("finetune tickets")
    [job] = await bot.wait_jobs(1)
    other_ws = Workspace(team=Team(id="T_OTHER", name="other", domain="other"))
    async with LocalSlack(other_ws, deliver_to=bot.slack.deliver_to) as other:
        async def ask(text: str) -> str:
            delivery = await other.deliver.slash_command(text)
            assert delivery.status == 200
            return bot.ack_text(delivery)

        assert "No data sets yet" in await ask("datasets")
        assert "No jobs yet" in await ask("jobs")
        assert "tix-v1" not in await ask("models")
        assert f"no job #{job.id}" in await ask(f"job {job.id}")
        assert f"no job #{job.id}" in await ask(f"cancel {job.id}")
        assert "no model 'tix-v1'" in await ask("promote tix-v1")
        await other.deliver.slash_command("finetune tickets")
        await other.state.async_wait_for(
            lambda: any("no data set 'tickets'" in (e.text or "") for e in
                        other.state.ephemerals_for()))
    assert bot.jobs()[0].status == "todo" and len(bot.jobs()) == 1
    teams = {bot.workspace_id(), bot.workspace_id("T_OTHER")}
    assert len(teams) == 2
