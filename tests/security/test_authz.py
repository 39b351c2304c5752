"""Who may do what, and to which thing (issue 11, items 1, 2, 5 and four of item 8).

Against the public surfaces: the bot served by uvicorn with the local Slack as its Web API
(the harness of `tests/bot`), files shared and buttons clicked as Slack delivers them, and
signed requests of shapes lmops never sends, made as Slack signs them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
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
serving = harness.serving
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
    await bot.wait(lambda: bot.audit("job.cancel"))  # written just after the cancel
    assert bot.jobs()[0].status == "cancelled"
    assert [e.actor for e in bot.audit("job.cancel")] == [ALICE]


# -- item 5: from Slack, a model is a name the workspace has (or a built-in) -----------------


@async_test
async def test_slack_names_no_folders_and_no_hub_ids(bot):
    bot.add_dataset("tickets")
    for text in ("classify model=tmp/x hello", "classify model=nonexist/zzz hello",
                 "finetune tickets base=org/some-encoder", "eval org/some-model tickets",
                 "chat model=tmp/x hi"):
        await bot.command(text, user=ALICE)
    await bot.rt.drain()
    refusals = [t for t in bot.ephemeral_texts(ALICE) if "hub ids and folders are for the CLI"
                in t]
    assert len(refusals) == 5, bot.ephemeral_texts(ALICE)
    assert "there is no model 'tmp/x' here" in refusals[0]
    assert bot.jobs() == []
    # an admin's allow-list (LMOPS_HUB_MODELS) lets Slack name that one hub id, and only it
    bot.rt.settings = bot.settings.model_copy(update={"lmops_hub_models": "org/allowed"})
    await bot.command("classify model=org/allowed hello", user=BOB)
    await bot.command("classify model=org/other hello", user=BOB)
    [job] = await bot.wait_jobs(1)
    await bot.rt.drain()
    assert job.params["model"] == "org/allowed" and len(bot.jobs()) == 1


def worker_home(tmp_path: Path, monkeypatch):
    from engine.settings import get_settings
    from storage import migrate

    monkeypatch.setenv("LMOPS_HOME", str(tmp_path / "home"))
    settings = get_settings()
    settings.home.mkdir(parents=True)
    migrate.upgrade(settings.database_url)
    return settings


def run_until_done(settings, job_ids: list[int], timeout: float = 120.0) -> dict[int, object]:
    """A real worker (retrying at once) until the jobs have ended; their final rows."""
    import threading

    from engine.worker import Worker, WorkerConfig
    from storage import queue
    from storage.db import make_engine, session_scope
    from storage.retry import RetryPolicy

    db = make_engine(settings.database_url)
    worker = Worker(settings, WorkerConfig(prefer_gpu_kinds=False, poll_interval=0.1,
                                           heartbeat_interval=0.2,
                                           retry=RetryPolicy(base_delay=0.05, max_delay=0.05)),
                    db=db)
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()

    def rows():
        with session_scope(db) as session:
            return {i: queue.get_job(session=session, job_id=i) for i in job_ids}

    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = rows()
            if all(j.status in ("succeeded", "failed") for j in done.values()):
                return done
            time.sleep(0.1)
        raise AssertionError(f"jobs still running: {rows()}")
    finally:
        worker.shutdown()
        thread.join(30)


def enqueue_classify(settings, team: str, model: str) -> int:
    from storage import accounts, queue
    from storage.db import make_engine, session_scope
    from storage.tables.jobs import JobCreate

    with session_scope(make_engine(settings.database_url)) as session:
        ws = accounts.get_or_create_workspace(session=session, team_id=team).id
        return queue.enqueue(session=session, job_in=JobCreate(
            workspace_id=ws, kind="classify", params={"texts": ["hi"], "model": model},
            max_attempts=3)).id


def test_a_slack_workspaces_job_reads_no_folder_and_a_hub_failure_is_final(tmp_path, monkeypatch):
    settings = worker_home(tmp_path, monkeypatch)
    folder = tmp_path / "cwd" / "tmp" / "x"  # a model folder where the worker runs
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(
        {"architectures": ["BertForSequenceClassification"], "model_type": "bert"}))
    monkeypatch.chdir(tmp_path / "cwd")
    touched: list[str] = []
    watching = [True]

    def audit(event: str, args: tuple) -> None:
        if watching[0] and event in ("open", "os.listdir", "os.scandir") and args and \
                isinstance(args[0], (str, bytes, os.PathLike)):
            where = os.path.abspath(os.fsdecode(args[0]))
            if where.startswith(str(tmp_path / "cwd" / "tmp")):
                touched.append(f"{event} {where}")

    sys.addaudithook(audit)  # hooks stay for the process: `watching` turns this one off
    try:
        slack_job = enqueue_classify(settings, "T0SLACKWS", "tmp/x")
        local_hub = enqueue_classify(settings, "local", "nonexist/zzz")
        done = run_until_done(settings, [slack_job, local_hub])
    finally:
        watching[0] = False
    refused = done[slack_job]
    assert (refused.status, refused.attempts) == ("failed", 1)
    assert "unknown model 'tmp/x'" in refused.error and str(folder) not in refused.error
    assert touched == []
    # the CLI's workspace still tries hub ids, and a download that fails is final at once
    hub = done[local_hub]
    assert (hub.status, hub.attempts) == ("failed", 1), (hub.status, hub.attempts, hub.error)
    assert "nonexist/zzz" in hub.error


# -- item 8: four small ones ---------------------------------------------------------------


@async_test
async def test_cancel_with_a_huge_number_is_one_line_not_a_500(bot):
    huge = "99999999999999999999999"
    for user, text in ((BOB, f"cancel {huge}"), (ALICE, f"cancel #{huge}"),
                       (harness.ROOT, f"cancel {huge}"), (BOB, f"job {huge}")):
        delivery = await bot.slack.deliver.slash_command(text, user=user)
        assert delivery.status == 200, (text, delivery.status, delivery.body[:200])
        assert "is too large to be a job ID" in bot.ack_text(delivery), bot.ack_text(delivery)


async def post_form(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(url, data=body,
                                                                headers=headers) as resp:
        return resp.status, await resp.text()


def signed_command(bot, text: str, user: str = harness.ADMIN_USER_ID) -> tuple[bytes, dict]:
    """A `/lm` request exactly as Slack signed it once: replaying it sends these bytes again."""
    from localslack import payloads

    form = payloads.slash_command_form(
        bot.ws, text=text, user=user, channel=GENERAL_CHANNEL_ID, command="/lm",
        response_url=bot.ws.new_response_url(channel=GENERAL_CHANNEL_ID, user=user),
        trigger_id=payloads.new_trigger_id())
    body = urlencode(form).encode()
    return body, {"Content-Type": "application/x-www-form-urlencoded",
                  **sign(bot.slack.signing_secret, body)}


def role_of(bot, user: str) -> str:
    from storage import accounts

    return bot.db_call(lambda s: accounts.get_role(session=s, workspace_id=bot.workspace_id(),
                                                   slack_user_id=user))


async def answer_of(bot, url: str, request: tuple[bytes, dict]) -> str:
    """Post a signed `/lm` request as the admin; its answer: the ack's, or the one that
    follows through `response_url` when the ack only says the bot is working on it."""
    before = len(bot.ephemeral_texts())
    status, body = await post_form(url, *request)
    assert status == 200, (status, body)
    if "Working on it" not in body:
        return body
    return (await bot.wait(lambda: bot.ephemeral_texts()[before:]))[-1]


@async_test
async def test_a_replayed_access_grant_runs_once(bot, serving):
    here = bot.slack.deliver_to
    grant = signed_command(bot, f"access grant <@{BOB}> trainer")
    revoke = signed_command(bot, f"access revoke <@{BOB}> trainer")
    assert "is now a trainer" in await answer_of(bot, here, grant)
    again = await answer_of(bot, here, grant)
    assert "handled already" in again and "is now" not in again
    assert role_of(bot, BOB) == "trainer" and len(bot.audit("role.grant")) == 1
    assert "no longer a trainer" in await answer_of(bot, here, revoke)
    assert role_of(bot, BOB) == "user"
    # the old grant sent once more, after the revoke, to this replica and to another one
    # (a second bot on the same database, which never saw the first request)
    assert "handled already" in await answer_of(bot, here, grant)
    other = harness.build_app(bot.settings, db=bot.db)
    async with serving(harness.create_asgi(bot.settings, app=other, reporter=False)) as served:
        assert "handled already" in await answer_of(bot, f"{served.url}/slack/events", grant)
        assert "handled already" in await answer_of(bot, f"{served.url}/slack/events", revoke)
    assert role_of(bot, BOB) == "user"
    assert len(bot.audit("role.grant")) == 1 and len(bot.audit("role.revoke")) == 1
    # the same words in a new request (a new trigger id) still work
    fresh = signed_command(bot, f"access grant <@{BOB}> trainer")
    assert "is now a trainer" in await answer_of(bot, here, fresh)
    assert role_of(bot, BOB) == "trainer" and len(bot.audit("role.grant")) == 2


HIDDEN = ("\u202e", "\u202a", "\u2066", "\u2069", "\x00", "\x1b")


@async_test
async def test_bidi_overrides_and_nul_reach_neither_jobs_nor_messages(bot):
    await bot.command("classify labels=a,b \u202eevil\x00 text\u2066 here\u2069", user=BOB)
    await bot.command('finetune "gpj.\u202eexe\x00"', user=ALICE)
    await bot.command("frobnicate\u202e\x00", user=BOB)
    await bot.slack.deliver.message(f"<@{bot.ws.bot_user_id}> hi\u202e there\x00\x1b", user=BOB)
    jobs = await bot.wait_jobs(2)
    await bot.rt.drain()
    classify = next(j for j in jobs if j.kind == "classify")
    chat = next(j for j in jobs if j.kind == "chat")
    assert classify.params["texts"] == ["evil text here"]
    assert chat.params["messages"][-1]["content"] == "hi there"
    said = bot.ephemeral_texts(ALICE) + bot.ephemeral_texts(BOB)
    assert any("no data set 'gpj.exe'" in t for t in said), said
    assert any("'frobnicate' is not a /lm command" in t for t in said), said
    shown = " ".join(said + [bot.text(m) for m in bot.messages()
                             if m.user == bot.ws.bot_user_id])
    assert not [c for c in HIDDEN if c in shown]


@async_test
async def test_cancel_button_for_another_workspaces_job_says_there_is_no_such_job(bot):
    from storage import queue
    from storage.tables import JobCreate

    other_ws = bot.workspace_id("T0OTHERWS")
    theirs = bot.db_call(lambda s: queue.enqueue(session=s, job_in=JobCreate(
        workspace_id=other_ws, kind="noop", params={}, user_id="UOTHER001")))
    posted = bot.ws.post_message(GENERAL_CHANNEL_ID, text="status", user=bot.ws.bot_user_id)
    for user in (harness.ROOT, ALICE):  # an admin here, and a trainer
        await bot.slack.deliver.block_actions("lmops_cancel", message_ts=posted.ts, user=user,
                                              value=str(theirs.id))
        await bot.wait(lambda u=user: bot.ephemeral_texts(u))
        expected = f":warning: there is no job #{theirs.id} here; `/lm jobs` lists them"
        assert bot.ephemeral_texts(user) == [expected], bot.ephemeral_texts(user)
    assert bot.db_call(lambda s: queue.get_job(session=s, job_id=theirs.id)).status == "todo"
