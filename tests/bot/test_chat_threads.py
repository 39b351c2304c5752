"""Chat where people talk (issue 12, item 4): a DM is answered in the conversation, a thread
the bot answered in is a conversation (follow-ups without a mention, with the earlier turns as
context), "what can you do?" gets what lmops does without a model, and a cut reply says so."""

from __future__ import annotations

import asyncio

import pytest

from localslack import ADMIN_DM_ID, BOT_ID, BOT_USER_ID, GENERAL_CHANNEL_ID
from localslack.payloads import message_event

ALICE, BOB = "UALICE001", "UBOB00001"
MENTION = f"<@{BOT_USER_ID}>"


@pytest.mark.parametrize("text", [
    "what can you do?", "What can you do", "help", "Help!", "help me", "what are you?",
    "who are you?", "hi, what can you do?", "Hey lmops, what can you do for me?",
    "what do you do?", "commands", "what commands do you support?", "how do I use you?",
    "what are your capabilities?", "What’s this bot?".replace("’s", " is"), "?",
    "what can you help me with?", "show me your commands please", "what else can you do?",
])
def test_questions_about_the_bot_are_recognised(text):
    from bot.kinds.chat import asks_what_i_do

    assert asks_what_i_do(text)


@pytest.mark.parametrize("text", [
    "what is lmops?", "help me write an email to my landlord", "what can you do about my refund?",
    "How do I reset my password?", "what are you doing tonight?", "who are you voting for?",
    "can you help with a SQL query?", "what commands does git have?", "hello", "thanks!",
    "hello?", "hi there?",
    "what is this error about?", "what can I do?",
])
def test_ordinary_questions_are_not(text):
    from bot.kinds.chat import asks_what_i_do

    assert not asks_what_i_do(text)


async def _reply_to(bot, job_id: int, result: dict, channel: str = GENERAL_CHANNEL_ID):
    needle = result["reply"].replace("&", "&amp;")  # as the message shows it
    bot.finish(job_id, {"model": "smollm2", **result})
    [message] = await bot.wait(lambda: [m for m in bot.messages(channel)
                                        if m.user == BOT_USER_ID and needle in bot.text(m)
                                        and "typing" not in bot.text(m)])
    return message


@pytest.mark.asyncio
async def test_a_dm_is_answered_in_the_conversation_not_in_a_thread(bot):
    [sent] = await bot.slack.deliver.message("How do I reset my password?", channel=ADMIN_DM_ID)
    [job] = await bot.wait_jobs(1)
    assert job.channel_id == ADMIN_DM_ID and job.thread_ts is None
    assert job.params["max_new_tokens"] == 512  # bot.kinds.chat.SLACK_MAX_NEW_TOKENS
    reply = await _reply_to(bot, bot.claim().id, {"reply": "Open Settings."}, ADMIN_DM_ID)
    assert reply.thread_ts is None  # in the conversation itself
    assert "asked:" not in bot.text(reply)  # the question is right above it
    asked = bot.ws.get_message(ADMIN_DM_ID, sent.payload["event"]["ts"])
    assert not asked.reply_count

    # the next DM has the conversation so far as context
    await bot.slack.deliver.message("and then?", channel=ADMIN_DM_ID)
    [second, _] = await bot.wait_jobs(2)
    assert second.thread_ts is None
    assert second.params["messages"] == [
        {"role": "user", "content": "How do I reset my password?"},
        {"role": "assistant", "content": "Open Settings."},
        {"role": "user", "content": "and then?"}]


@pytest.mark.asyncio
async def test_a_dm_in_a_thread_is_answered_in_that_thread(bot):
    [first] = await bot.slack.deliver.message("hello", channel=ADMIN_DM_ID)
    root = first.payload["event"]["ts"]
    await bot.slack.deliver.message("one more thing", channel=ADMIN_DM_ID, thread_ts=root)
    jobs = await bot.wait_jobs(2)
    in_thread = next(j for j in jobs if j.params["messages"][-1]["content"] == "one more thing")
    assert in_thread.thread_ts == root
    assert in_thread.params["messages"][0] == {"role": "user", "content": "hello"}


@pytest.mark.asyncio
async def test_a_follow_up_in_the_bots_thread_is_answered_with_the_thread_as_context(bot):
    [sent, _] = await bot.slack.deliver.message(f"{MENTION} how do I reset my password?",
                                                user=BOB)
    root = sent.payload["event"]["ts"]
    await bot.wait_jobs(1)
    await _reply_to(bot, bot.claim().id, {"reply": "Open *Settings* & click Reset."})

    deliveries = await bot.slack.deliver.message("and if I forgot my email?", user=BOB,
                                                 thread_ts=root)
    assert len(deliveries) == 1  # no mention: only the message event
    [follow_up, _] = await bot.wait_jobs(2)
    assert follow_up.thread_ts == root and follow_up.user_id == BOB
    assert follow_up.params["messages"] == [
        {"role": "user", "content": "how do I reset my password?"},
        {"role": "assistant", "content": "Open *Settings* & click Reset."},
        {"role": "user", "content": "and if I forgot my email?"}]
    reply = await _reply_to(bot, bot.claim().id, {"reply": "Ask an admin."})
    assert reply.thread_ts == root

    # a mention in the thread is one job (message + app_mention), with the context too
    await bot.slack.deliver.message(f"{MENTION} thanks, and <@{ALICE}> agrees", user=BOB,
                                    thread_ts=root)
    jobs = await bot.wait_jobs(3)
    await asyncio.sleep(0.3)
    assert len(bot.jobs()) == 3
    third = max(jobs, key=lambda j: j.id)
    assert [m["role"] for m in third.params["messages"]] == ["user", "assistant", "user",
                                                             "assistant", "user"]
    assert third.params["messages"][-1]["content"] == "thanks, and @UALICE001 agrees"


@pytest.mark.asyncio
async def test_threads_without_the_bot_edits_and_bot_messages_get_nothing(bot):
    ws = bot.ws
    # people talking in a thread the bot is not part of
    [sent] = await bot.slack.deliver.message("lunch at noon?", user=ALICE)
    await bot.slack.deliver.message("sure", user=BOB, thread_ts=sent.payload["event"]["ts"])
    # the bot's thread: an edit, another bot, and the bot's own message are not follow-ups
    [asked, _] = await bot.slack.deliver.message(f"{MENTION} hi there", user=BOB)
    root = asked.payload["event"]["ts"]
    await bot.wait_jobs(1)
    await _reply_to(bot, bot.claim().id, {"reply": "Hello!"})
    posted = ws.post_message(GENERAL_CHANNEL_ID, text="and you?", user=BOB, thread_ts=root)
    edit = {**message_event(ws, posted), "subtype": "message_changed",
            "message": {"text": "and you??", "user": BOB}}
    await bot.slack.deliver.event_callback(edit)
    other = {**message_event(ws, posted), "bot_id": "BOTHER01", "user": "UOTHERBOT"}
    await bot.slack.deliver.event_callback(other)
    own = ws.post_message(GENERAL_CHANNEL_ID, text="status", user=BOT_USER_ID, bot_id=BOT_ID,
                          thread_ts=root)
    await bot.slack.deliver.event_callback(message_event(ws, own))
    await asyncio.sleep(0.5)
    assert len(bot.jobs()) == 1
    from_bot = [m for m in ws.replies(GENERAL_CHANNEL_ID, root) if m.user == BOT_USER_ID]
    assert len(from_bot) == 2  # its reply and "status"
    # while a person's new message there is a follow-up
    await bot.slack.deliver.message("and how are you?", user=BOB, thread_ts=root)
    [follow_up, _] = await bot.wait_jobs(2)
    assert follow_up.params["messages"] == [  # the bot's "status" is no chat turn
        {"role": "user", "content": "hi there"}, {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "and you?"}, {"role": "user", "content": "and how are you?"}]


@pytest.mark.asyncio
async def test_a_thread_with_only_other_bot_messages_is_not_the_bots_conversation(bot):
    """A data set card or a job status in a thread is no chat: replies there are for people."""
    [sent] = await bot.slack.deliver.message("here is the file", user=ALICE)
    root = sent.payload["event"]["ts"]
    bot.ws.post_message(GENERAL_CHANNEL_ID, text="Data set ready", user=BOT_USER_ID,
                        bot_id=BOT_ID, thread_ts=root,
                        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "Ready"}}])
    await bot.slack.deliver.message("nice, thanks", user=BOB, thread_ts=root)
    await asyncio.sleep(0.5)
    assert bot.jobs() == []
    # once the bot chatted there (asked by a mention), the thread is a conversation
    await bot.slack.deliver.message(f"{MENTION} is it ready?", user=BOB, thread_ts=root)
    await bot.wait_jobs(1)
    await _reply_to(bot, bot.claim().id, {"reply": "Yes, it is."})
    await bot.slack.deliver.message("great", user=BOB, thread_ts=root)
    [second, _] = await bot.wait_jobs(2)
    assert [m["content"] for m in second.params["messages"]] == [
        "here is the file\n\nnice, thanks\n\nis it ready?", "Yes, it is.", "great"]


@pytest.mark.parametrize("channel, text", [
    (GENERAL_CHANNEL_ID, f"{MENTION} what can you do?"),
    (ADMIN_DM_ID, "help"),
])
@pytest.mark.asyncio
async def test_what_can_you_do_is_answered_with_what_lmops_does(bot, channel, text):
    user = {"user": BOB} if channel == GENERAL_CHANNEL_ID else {}
    sent = await bot.slack.deliver.message(text, channel=channel, **user)
    ts = sent[0].payload["event"]["ts"]
    [answer] = await bot.wait(lambda: bot.posted("/lm help", channel=channel))
    await asyncio.sleep(0.3)
    assert bot.jobs() == []  # no model call
    assert len(bot.posted("/lm help", channel=channel)) == 1  # message + app_mention: one answer
    shown = bot.text(answer)
    for capability in ("classify", "chat", "fine-tune", "evaluate", "upload a CSV"):
        assert capability in shown
    assert answer.thread_ts == (None if channel == ADMIN_DM_ID else ts)

    # an ordinary question that starts the same way is for the model
    await bot.slack.deliver.message(text.replace("what can you do?", "what can you do about my "
                                                 "refund?").replace("help", "help me fix a bug"),
                                    channel=channel, **user)
    [job] = await bot.wait_jobs(1)
    assert job.params["messages"][-1]["content"] in ("what can you do about my refund?",
                                                      "help me fix a bug")


@pytest.mark.asyncio
async def test_a_cut_reply_and_a_shortened_message_say_so(bot):
    await bot.slack.deliver.message("Tell me everything about passwords.", channel=ADMIN_DM_ID)
    await bot.wait_jobs(1)
    reply = await _reply_to(bot, bot.claim().id, {
        "reply": "Passwords should be long.", "finish_reason": "length", "truncated": True,
        "max_new_tokens": 512, "input_truncated": True, "dropped_messages": 0,
        "shortened_to": 8000}, ADMIN_DM_ID)
    shown = bot.text(reply)
    assert "Passwords should be long. … _(cut at 512 tokens; ask me to go on)_" in shown
    assert "your message was shortened to the last 8,000 tokens" in shown

    # "go on" gets the cut reply as context, without the note
    await bot.slack.deliver.message("go on", channel=ADMIN_DM_ID)
    [second, _] = await bot.wait_jobs(2)
    assert second.params["messages"][-2:] == [
        {"role": "assistant", "content": "Passwords should be long."},
        {"role": "user", "content": "go on"}]


def test_conversation_turns_merge_people_and_keep_the_last_ten():
    from bot.kinds.chat import conversation_turns

    messages = [{"ts": f"100.{i:06d}", "user": ALICE if i % 3 else BOB, "text": f"m{i}"}
                for i in range(30)]
    messages.append({"ts": "100.000030", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": "x",
                     "blocks": [{"type": "section", "block_id": "lmops_chat_reply",
                                 "text": {"type": "mrkdwn", "text": "a &lt;b&gt;"}}]})
    messages.append({"ts": "100.000031", "user": BOB, "text": "now"})
    turns, replied = conversation_turns(messages, BOT_USER_ID, BOT_ID, before="100.000031")
    assert replied and turns[-1] == {"role": "assistant", "content": "a <b>"}
    assert len(turns) == 2 and turns[0]["content"].startswith("m0\n\nm1")  # one user turn
    turns, replied = conversation_turns(messages[:5], BOT_USER_ID, BOT_ID, before="100.000003")
    assert not replied and turns == [{"role": "user", "content": "m0\n\nm1\n\nm2"}]
