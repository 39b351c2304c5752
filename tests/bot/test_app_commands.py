"""`/lm` sub-commands answered in the acknowledgement, roles and the audit log, through the real
app over HTTP (signed requests from the local Slack)."""

from __future__ import annotations

import pytest

from localslack import ADMIN_USER_ID

ALICE, BOB = "UALICE001", "UBOB00001"
pytestmark = pytest.mark.asyncio


async def test_help_and_errors(bot):
    for text in ("", "help"):
        ack = bot.ack_text(await bot.command(text))
        assert "/lm: language models in Slack" in ack and "/lm finetune" in ack
    assert "Who:* trainers and admins" in bot.ack_text(await bot.command("help finetune"))
    assert "Did you mean `/lm classify`" in bot.ack_text(await bot.command("clasify hi"))
    assert "eval needs a model and a dataset" in bot.ack_text(await bot.command("eval"))
    assert "epochs must be a number" in bot.ack_text(
        await bot.command("finetune tickets epochs=many"))
    assert "unknown option colour=" in bot.ack_text(await bot.command("models colour=red"))
    # errors are ephemeral: nothing in the channel, nothing queued
    assert bot.messages() == [] and bot.jobs() == []


async def test_acks_are_fast_and_ephemeral(bot):
    delivery = await bot.command("jobs")
    body = delivery.json()
    assert body["response_type"] == "ephemeral" and delivery.elapsed < 1.0
    assert "No jobs yet" in bot.ack_text(delivery)


async def test_models_lists_builtin_and_workspace_models(bot):
    bot.add_model("tix-v1")
    ack = bot.ack_text(await bot.command("models"))
    assert "*tix-v1*" in ack and "*minilm*" in ack and "built in" in ack


async def test_datasets_jobs_and_one_job(bot):
    assert "No data sets yet" in bot.ack_text(await bot.command("datasets"))
    bot.add_dataset("tickets")
    assert "*tickets*" in bot.ack_text(await bot.command("datasets"))
    await bot.command("finetune tickets epochs=2")
    [job] = await bot.wait_jobs(1)
    listing = bot.ack_text(await bot.command("jobs"))
    assert f"Fine-tune #{job.id}" in listing and "1 queued or running" in listing
    one = bot.ack_text(await bot.command(f"job {job.id}"))
    assert f"Fine-tune #{job.id}" in one and "queued" in one
    assert "no job #999" in bot.ack_text(await bot.command("job 999"))


async def test_finetune_by_role(bot):
    bot.add_dataset("tickets")
    refused = bot.ack_text(await bot.command("finetune tickets", user=BOB))
    assert "Only trainers and admins may start fine-tunes" in refused
    assert "access grant @you trainer" in refused
    await bot.command("finetune tickets name=tix-v1", user=ALICE)
    await bot.command("finetune tickets method=ia3", user=ADMIN_USER_ID)
    jobs = await bot.wait_jobs(2)
    assert sorted(j.user_id for j in jobs) == sorted([ALICE, ADMIN_USER_ID])
    by_alice = next(j for j in jobs if j.user_id == ALICE)
    assert by_alice.params["name"] == "tix-v1" and by_alice.params["task"] == "classify"
    assert by_alice.params["data"].endswith("tickets.csv") and by_alice.kind == "finetune"
    await bot.wait(lambda: len(bot.audit("job.finetune")) == 2)
    assert {e.actor for e in bot.audit("job.finetune")} == {ALICE, ADMIN_USER_ID}


async def test_finetune_problems_come_back_ephemeral(bot):
    await bot.command("finetune nope")
    await bot.wait(lambda: any("no data set 'nope'" in t for t in bot.ephemeral_texts()))
    bot.add_dataset("tickets")
    bot.add_model("tix-v1")
    await bot.command("finetune tickets name=tix-v1")
    await bot.wait(lambda: any("exists already" in t for t in bot.ephemeral_texts()))
    await bot.command("finetune tickets task=chat")
    await bot.wait(lambda: any("is a classify data set" in t for t in bot.ephemeral_texts()))
    assert bot.jobs() == []


async def test_eval(bot):
    bot.add_dataset("tickets")
    assert "Only trainers and admins" in bot.ack_text(
        await bot.command("eval minilm tickets", user=BOB))
    await bot.command("eval minilm tickets", user=ALICE)
    [job] = await bot.wait_jobs(1)
    assert job.kind == "evaluate" and job.params["model"] == "minilm"
    assert job.params["data"].endswith("tickets.csv")
    await bot.command("eval smollm2 tickets", user=ALICE)
    await bot.wait(lambda: any("don't go together" in t for t in bot.ephemeral_texts(ALICE)))
    await bot.command("eval nomodel tickets", user=ALICE)
    await bot.wait(lambda: any("no model 'nomodel'" in t for t in bot.ephemeral_texts(ALICE)))


async def test_cancel_by_owner_or_admin_only(bot):
    bot.add_dataset("tickets")
    await bot.command("finetune tickets", user=ALICE)
    [job] = await bot.wait_jobs(1)
    refused = bot.ack_text(await bot.command(f"cancel {job.id}", user=BOB))
    assert "Only the job's owner and admins may cancel this job" in refused
    assert "is cancelled" in bot.ack_text(await bot.command(f"cancel {job.id}", user=ALICE))
    assert bot.jobs()[0].status == "cancelled"
    assert "already ended (cancelled)" in bot.ack_text(await bot.command(f"cancel {job.id}"))
    [entry] = bot.audit("job.cancel")
    assert entry.actor == ALICE and entry.target == str(job.id)
    assert "no job #77" in bot.ack_text(await bot.command("cancel 77", user=BOB))


async def test_admin_cancels_a_running_job(bot):
    bot.add_dataset("tickets")
    await bot.command("finetune tickets", user=ALICE)
    await bot.wait_jobs(1)
    job = bot.claim()
    assert "stops at its next step" in bot.ack_text(await bot.command(f"cancel {job.id}"))
    assert bot.jobs()[0].cancel_requested


async def test_promote(bot):
    bot.add_model("tix-v1")
    assert "Only trainers and admins may promote models" in bot.ack_text(
        await bot.command("promote tix-v1", user=BOB))
    ack = bot.ack_text(await bot.command("promote tix-v1", user=ALICE))
    assert "`tix-v1` is now this workspace's default classify model" in ack
    assert "is built in" in bot.ack_text(await bot.command("promote sentiment", user=ALICE))
    assert "no model 'other'" in bot.ack_text(await bot.command("promote other", user=ALICE))
    assert [e.target for e in bot.audit("model.promote")] == ["tix-v1"]
    assert ":star: promoted" in bot.ack_text(await bot.command("models"))


async def test_access_show_grant_revoke(bot):
    shown = bot.ack_text(await bot.command("access", user=BOB))
    assert "<@U_ADMIN> _(LMOPS_ADMINS)_" in shown and "<@UALICE001>" in shown
    refused = bot.ack_text(await bot.command(f"access grant <@{BOB}> trainer", user=ALICE))
    assert "Only admins may grant or revoke roles" in refused
    granted = bot.ack_text(await bot.command(f"access grant <@{BOB}|bob> trainer"))
    assert "<@UBOB00001> is now a trainer" in granted
    assert "is a trainer already" in bot.ack_text(
        await bot.command(f"access grant <@{BOB}> trainer"))
    await bot.command("finetune x", user=BOB)  # allowed now (the data set is missing)
    await bot.wait(lambda: any("no data set 'x'" in t for t in bot.ephemeral_texts(BOB)))
    assert "is not a admin" in bot.ack_text(await bot.command(f"access revoke <@{BOB}> admin"))
    revoked = bot.ack_text(await bot.command(f"access revoke <@{BOB}> trainer"))
    assert "<@UBOB00001> is no longer a trainer" in revoked
    assert "admin through LMOPS_ADMINS" in bot.ack_text(
        await bot.command("access revoke <@UROOT0001> admin"))
    assert [e.action for e in reversed(bot.audit())] == ["role.grant", "role.revoke"]
    assert "access grant needs a user" in bot.ack_text(await bot.command("access grant trainer"))


async def test_granted_admin_may_manage_access(bot):
    bot.grant(BOB, "admin")
    assert "<@UALICE001> is now a admin" in bot.ack_text(
        await bot.command(f"access grant <@{ALICE}> admin", user=BOB))


@pytest.mark.parametrize("text, needle", [
    ("classify model=nosuch I love it", "no model 'nosuch'"),
    ("chat model=nosuch hello", "no model 'nosuch'"),
    ("finetune nosuchdata", "no data set 'nosuchdata'"),
    ("eval minilm nosuchdata", "no data set 'nosuchdata'"),
])
async def test_a_request_that_cannot_run_is_answered_with_why_not_a_promise(bot, text, needle):
    ack = bot.ack_text(await bot.command(text, user=ALICE))
    assert needle in ack
    assert "Classifying" not in ack and "Thinking" not in ack and "Queuing" not in ack
    assert bot.jobs() == []
