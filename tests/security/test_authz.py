"""Who may do what, and to which thing (issue 11, items 1, 2, 5 and four of item 8).

Against the public surfaces: the bot served by uvicorn with the local Slack as its Web API
(the harness of `tests/bot`), files shared and buttons clicked as Slack delivers them, and
signed requests of shapes lmops never sends, made as Slack signs them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest

from localslack import GENERAL_CHANNEL_ID, sign


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


# -- item 2: payload shapes lmops never sends reach no listener ------------------------------


async def post_signed(bot, form: dict[str, str]) -> tuple[int, str]:
    """POST a form to the bot's events URL, signed with the signing secret as Slack signs."""
    body = urlencode(form).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               **sign(bot.slack.signing_secret, body)}
    async with aiohttp.ClientSession() as session, session.post(
            bot.slack.deliver_to, data=body, headers=headers) as resp:
        return resp.status, await resp.text()


def odd_payloads(bot, user: str, action_id: str, value: str) -> dict[str, dict]:
    """The same click by `user` in three shapes Bolt's `@app.action(action_id)` also matches
    (or that the old role check misread)."""
    team = {"id": bot.ws.team.id, "domain": bot.ws.team.domain}
    common = {"token": "x", "team": team, "user": {"id": user, "name": user},
              "channel": {"id": GENERAL_CHANNEL_ID, "name": "general"},
              "response_url": bot.ws.new_response_url(channel=GENERAL_CHANNEL_ID, user=user),
              "trigger_id": f"{time.time_ns()}.1.{action_id}", "action_ts": str(time.time())}
    action = {"name": action_id, "action_id": action_id, "type": "button", "value": value}
    return {
        "interactive_message": {**common, "type": "interactive_message",
                                "callback_id": action_id, "actions": [action],
                                "attachment_id": "1", "message_ts": "1.000001"},
        "dialog_submission": {**common, "type": "dialog_submission", "callback_id": action_id,
                              "submission": {"value": value}, "state": "", "actions": [action]},
        "block_actions+command": {**common, "type": "block_actions", "command": "/other",
                                  "text": "help", "actions": [action],
                                  "container": {"type": "message", "message_ts": "1.000001",
                                                "channel_id": GENERAL_CHANNEL_ID}},
    }


@async_test
async def test_interaction_shapes_lmops_never_sends_do_nothing(bot):
    bot.add_dataset("tickets")
    model = bot.add_model("tix-v1")
    await bot.command("finetune tickets", user=ALICE)
    [job] = await bot.wait_jobs(1)
    targets = {"Cancel": ("lmops_cancel", str(job.id)), "Promote": ("lmops_promote", model.name),
               "Fine-tune": ("lmops_finetune", "#1"), "Evaluate": ("lmops_eval", "#1")}
    answers = {}
    for what, (action_id, value) in targets.items():
        for shape, payload in odd_payloads(bot, BOB, action_id, value).items():
            answers[what, shape] = await post_signed(bot, {"payload": json.dumps(payload)})
    await bot.rt.drain()
    await asyncio.sleep(0.3)
    await bot.rt.drain()

    after = bot.jobs()
    assert [(j.id, j.status, j.cancel_requested) for j in after] == [(job.id, "todo", False)]
    assert bot.db_call(lambda s: __import__("storage.model_records").model_records.get_model(
        session=s, workspace_id=bot.workspace_id(), ref=model.id)).promoted_for is None
    assert [e for e in bot.audit() if e.actor == BOB] == []
    # refused before any listener, with HTTP 400 and one line
    assert {answer for answer in answers.values()} == \
        {(400, "lmops takes slash commands, block_actions and events only")}, answers
    assert bot.ws.ephemerals_for(BOB) == []

    # the shapes lmops does send still work: the owner cancels with a button click
    posted = bot.ws.post_message(GENERAL_CHANNEL_ID, text="status", user=bot.ws.bot_user_id)
    await bot.slack.deliver.block_actions("lmops_cancel", message_ts=posted.ts, user=ALICE,
                                          value=str(job.id))
    await bot.wait(lambda: bot.jobs()[0].status == "cancelled")
    assert [e.actor for e in bot.audit("job.cancel")] == [ALICE]
