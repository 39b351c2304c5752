"""What stays on screen once the work is done (issue 12, items 7 and 9): the "⏳ Classifying…"
acknowledgement goes when the answer is posted, `/lm jobs` lists the long jobs (`all` adds the
predictions), the Evaluate button says which model it evaluates, and a Promote button goes
once it is used."""

from __future__ import annotations

import asyncio

import pytest

from bot.blocks import dataset_report_blocks, fallback_text
from bot.blocks_base import section
from bot.blocks_jobs import promote_blocks
from localslack import ADMIN_USER_ID, BOT_ID, BOT_USER_ID, GENERAL_CHANNEL_ID

ALICE = "UALICE001"
pytestmark = pytest.mark.asyncio
PREDICTION = {"text": "I love it", "label": "pos", "score": 0.93,
              "scores": {"pos": 0.93, "neg": 0.07}, "truncated": False}


def _acks(bot, needle: str, user: str = ADMIN_USER_ID) -> list[str]:
    return [t for t in bot.ephemeral_texts(user) if needle in t]


async def test_the_classify_acknowledgement_goes_when_the_answer_comes(bot):
    await bot.command("classify I love it")
    await bot.wait_jobs(1)
    assert _acks(bot, "Classifying")  # shown while it works
    bot.finish(bot.claim().id, {"predictions": [PREDICTION], "model": "sentiment"})
    await bot.wait(lambda: bot.posted("*pos*"))
    await bot.wait(lambda: not _acks(bot, "Classifying"))
    deletes = [c for c in bot.ws.calls("response_url") if c.params.get("delete_original")]
    assert len(deletes) == 1 and deletes[0].ok


async def test_the_chat_and_finetune_acknowledgements_go_when_their_messages_come(bot):
    await bot.command("chat How do I reset it?")
    await bot.wait(lambda: bot.posted("typing"))  # the reply's own message, updated as it grows
    await bot.wait(lambda: not _acks(bot, "Thinking"))
    bot.add_dataset("tickets")
    await bot.command("finetune tickets epochs=2", user=ALICE)
    await bot.wait(lambda: bot.posted("queued"))  # the fine-tune's status message
    await bot.wait(lambda: bot.ephemeral_texts(ALICE) == [])


def _post_as_bot(bot, blocks, thread_ts: str | None = None):
    return bot.ws.post_message(GENERAL_CHANNEL_ID, text=fallback_text(blocks), user=BOT_USER_ID,
                               bot_id=BOT_ID, blocks=blocks, thread_ts=thread_ts)


async def test_the_evaluate_button_says_which_model_and_its_card_stays(bot):
    dataset = bot.add_dataset("tickets")

    def card():
        return _post_as_bot(bot, dataset_report_blocks(
            {"id": dataset.id, "name": dataset.name},
            {"ok": True, "n": 4, "label_counts": {"pos": 2, "neg": 2}}))

    first, second = card(), card()
    await bot.slack.deliver.block_actions("lmops_eval", message_ts=first.ts, user=ALICE)
    [note] = await bot.wait(lambda: _acks(bot, "Evaluation", ALICE))
    assert "the built-in `minilm` (no promoted classifier) on `tickets`" in note
    assert "queued as job #" in note
    await bot.wait(lambda: bot.posted("Evaluation #"))  # its status message
    bot.add_model("tix-v1")
    await bot.command("promote tix-v1")
    await bot.slack.deliver.block_actions("lmops_eval", message_ts=second.ts, user=ADMIN_USER_ID)
    [note] = await bot.wait(lambda: _acks(bot, "Evaluation of"))
    assert "the promoted model `tix-v1` on `tickets`" in note
    await asyncio.sleep(0.3)
    # the job's response_url is the click's: its "original" is the card, which stays
    assert bot.ws.get_message(GENERAL_CHANNEL_ID, first.ts) is not None
    assert not [c for c in bot.ws.calls("response_url") if c.params.get("delete_original")]


async def test_jobs_lists_the_long_jobs_and_all_of_them_with_all(bot):
    await bot.command("classify I love it")
    await bot.command("chat hello")
    bot.add_dataset("tickets")
    await bot.command("finetune tickets epochs=2")
    jobs = await bot.wait_jobs(3)
    by_kind = {j.kind: j.id for j in jobs}
    listing = bot.ack_text(await bot.command("jobs"))
    assert f"Fine-tune #{by_kind['finetune']}" in listing
    assert "Classification #" not in listing and "Chat reply #" not in listing
    assert "`/lm jobs all` shows them too" in listing
    everything = bot.ack_text(await bot.command("jobs all"))
    for title in ("Fine-tune", "Classification", "Chat reply"):
        assert f"{title} #" in everything
    assert "jobs all` shows them" not in everything
    assert "use `/lm jobs`, or `/lm jobs all`" in bot.ack_text(await bot.command("jobs some"))


async def test_a_used_promote_button_is_replaced_by_who_promoted(bot):
    bot.add_model("tix-v1")
    root = _post_as_bot(bot, [section("status")])
    result = _post_as_bot(bot, [section(":white_check_mark: *Fine-tune #1 finished*"),
                                *promote_blocks("tix-v1", "classify")], thread_ts=root.ts)
    await bot.slack.deliver.block_actions("lmops_promote", message_ts=result.ts, user=ALICE)
    await bot.wait(lambda: bot.posted("default model for its task"))
    after = await bot.wait(lambda: (m := bot.ws.get_message(GENERAL_CHANNEL_ID, result.ts))
                           and "Promoted by" in bot.text(m) and m)
    assert not [b for b in after.blocks if b["type"] == "actions"]
    assert f"Promoted by <@{ALICE}>" in bot.text(after) and "Try it" in bot.text(after)
    assert "finished" in bot.text(after)
