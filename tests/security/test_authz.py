"""Who may do what, and to which thing (issue 11, items 1, 2, 5 and four of item 8).

Against the public surfaces: the bot served by uvicorn with the local Slack as its Web API
(the harness of `tests/bot`), files shared and buttons clicked as Slack delivers them, and
signed requests of shapes lmops never sends, made as Slack signs them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest

from localslack import GENERAL_CHANNEL_ID


def _load_harness():
    """`tests/bot/conftest.py` as a module (one copy per test session)."""
    if "lmops_bot_harness" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "lmops_bot_harness", Path(__file__).resolve().parents[1] / "bot" / "conftest.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while it loads
        spec.loader.exec_module(module)
    return sys.modules["lmops_bot_harness"]


harness = _load_harness()
bot, db_url, template_db = harness.bot, harness.db_url, harness.template_db
ALICE, BOB = harness.ALICE, harness.BOB  # a trainer, a plain user
async_test = pytest.mark.asyncio


def rows(word: str) -> str:
    """A small, valid classify CSV whose content (and so its hash) is its own."""
    return "text,label\n" + "".join(f"{word} good {i},pos\n{word} bad {i},neg\n"
                                    for i in range(5))


async def share(bot, name: str, user: str):
    """`user` shares a CSV; returns the bot's card (the reply in the upload's thread)."""
    sent = await bot.slack.deliver.file_share(name, rows(Path(name).stem), user=user)
    assert all(d.status == 200 for d in sent)
    ts = sent[0].payload["event"]["ts"]
    replies = await bot.wait(lambda: bot.ws.replies(GENERAL_CHANNEL_ID, ts)[1:], timeout=15)
    assert "Ready to use" in bot.text(replies[0]), bot.text(replies[0])
    return replies[0]


def stored(bot):
    return {d.name: d for d in bot.db_call(lambda s: __import__("storage.datasets").datasets
                                           .list_datasets(session=s,
                                                          workspace_id=bot.workspace_id()))}


# -- item 1: `#N` is the id, and a card's buttons name the id ------------------------------


@async_test
async def test_a_data_set_named_like_an_id_cannot_stand_in_for_it(bot):
    await share(bot, "first.csv", ALICE)  # id 1
    await share(bot, "3.csv", BOB)  # the attacker's: named "3", id 2
    card = await share(bot, "victim.csv", ALICE)  # id 3
    sets = stored(bot)
    assert sets["victim"].id == 3 and sets["3"].id == 2  # the name of one is the id of the other
    victim = sets["victim"].stored_path

    await bot.slack.deliver.block_actions("lmops_finetune", message_ts=card.ts, user=ALICE)
    [job] = await bot.wait_jobs(1)
    assert (job.kind, job.params["data"]) == ("finetune", victim)
    await bot.slack.deliver.block_actions("lmops_eval", message_ts=card.ts, user=ALICE)
    assert (await bot.wait_jobs(2))[0].params["data"] == victim

    ack = bot.ack_text(await bot.command("finetune #3", user=ALICE))
    assert "`#3`" in ack
    assert (await bot.wait_jobs(3))[0].params["data"] == victim
    await bot.command("eval minilm #3", user=ALICE)
    newest = (await bot.wait_jobs(4))[0]
    assert (newest.kind, newest.params["data"]) == ("evaluate", victim)

    # a bare word is a name: "3" is the attacker's data set, by its name, as it says
    await bot.command("finetune 3", user=ALICE)
    assert (await bot.wait_jobs(5))[0].params["data"] == sets["3"].stored_path
    # and a number no data set is named is no id either: the answer says how to write one
    await bot.command("finetune 1", user=ALICE)
    await bot.wait(lambda: any("no data set '1'" in t and "#1" in t
                               for t in bot.ephemeral_texts(ALICE)))
    await asyncio.sleep(0.2)
    assert len(bot.jobs()) == 5
