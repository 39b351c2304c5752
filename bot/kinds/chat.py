"""`/lm chat`, mentions and DMs: a reply from a chat model, streamed into one message.

Also what the event listeners (`bot.events`) need for a conversation: the earlier turns of a
thread or DM as chat messages (`conversation_turns`, the bot's replies as the assistant's), and
the small rule that answers "what can you do?" with what lmops does, without a model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from bot.blocks import CHAT_REPLY_BLOCK, chat_reply_blocks, job_failed_blocks, job_status_blocks
from bot.blocks_base import Block, context, fit, section
from bot.command_text import clean, from_slack
from bot.grammar import COMMAND, CommandError, check_model
from bot.job_requests import Origin, params_or_error, resolve_model
from bot.kinds.base import (
    JobJSON,
    JobRequest,
    JobSubcommand,
    Presenter,
    register_job_subcommand,
)
from bot.mrkdwn import JOINER, code, escape, mention, truncate
from bot.store import BotStore
from engine.kinds.chat import ChatJob

#: New tokens a reply from Slack may have: a few paragraphs (about 350 words); a longer one
#: says it was cut (the engine's own default, for the CLI and library, stays 128).
SLACK_MAX_NEW_TOKENS = 512
MAX_TURNS = 10  # earlier turns of a thread or DM given to the model
MAX_TURN_CHARS = 4000


async def chat_params(store: BotStore, origin: Origin, text: str, model: str | None,
                      history: Sequence[dict[str, str]] = ()) -> ChatJob:
    """A reply to `text`, after the earlier turns `history`, with the named model or the
    workspace's promoted chat model (NUL, control characters and bidi overrides taken out:
    mentions and DMs come this way)."""
    text = clean(text)
    if not text.strip():
        raise CommandError("ask me something, like `@lmops how do I reset my password?`")
    if model:
        model, task = await resolve_model(store, origin, model)
        if task not in (None, "chat"):
            raise CommandError(f"{model!r} is not a chat model; `/lm models` lists them")
    else:
        model = await store.promoted(origin.workspace_id, "chat")
    values: dict[str, Any] = {"messages": (*history, {"role": "user", "content": text.strip()}),
                              "max_new_tokens": SLACK_MAX_NEW_TOKENS}
    if model:
        values["model"] = model
    return params_or_error(ChatJob, **values)


async def to_params(store: BotStore, origin: Origin, request: JobRequest
                    ) -> tuple[ChatJob, dict[str, Any]]:
    return await chat_params(store, origin, request.text, request.option("model")), {}


def input_notes(result: dict[str, Any]) -> list[str]:
    """What the reply's context line says about a conversation fit into the model."""
    notes = []
    if result.get("shortened_to"):
        notes.append(f":scissors: _your message was shortened to the last "
                     f"{int(result['shortened_to']):,} tokens_")
    n = int(result.get("dropped_messages") or 0)
    if n:
        notes.append(":scissors: _the oldest message of this conversation was left out_"
                     if n == 1 else f":scissors: _the {n} oldest messages of this conversation "
                     "were left out_")
    return notes


def message(job: JobJSON) -> list[Block]:
    """The reply as it grows; a `/lm chat` (invisible to the channel) shows what was asked."""
    status, result = job.get("status"), job.get("result") or {}
    params = job.get("params") or {}
    model = result.get("model") or params.get("model")
    if status == "succeeded":
        cut = result.get("max_new_tokens") or params.get("max_new_tokens")
        blocks = chat_reply_blocks(str(result.get("reply") or ""), model=model,
                                   cut_at=cut if result.get("truncated") else None,
                                   notes=input_notes(result))
    elif status == "failed":
        blocks = job_failed_blocks(job)
    elif status == "cancelled":
        blocks = job_status_blocks(job)
    else:
        partial = str((job.get("progress") or {}).get("partial_reply") or "")
        blocks = chat_reply_blocks(partial, model=model, streaming=True)
    if job.get("thread_ts") or not job.get("response_url"):  # a reply under or after the question
        return blocks
    messages = params.get("messages") or []
    question = messages[-1].get("content", "") if messages and isinstance(messages[-1], dict) \
        else ""
    asker = f"{mention(job['user_id'])} asked: " if job.get("user_id") else ""
    return fit([context([asker + escape(truncate(" ".join(question.split()), 300))]), *blocks])


# --- conversations -------------------------------------------------------------------------------

_CUT_NOTE = re.compile(r"\s*… _\(cut at [\d,]+ tokens; ask me to go on\)_\s*$")


def plain_text(text: str, bot_user_id: str | None) -> str:
    """A message as the model reads it: the bot's mention out, other markup as the user saw it."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    return clean(from_slack(text)).strip()


def is_chat_reply(message: dict[str, Any], bot_user_id: str | None, bot_id: str | None) -> bool:
    """A message the bot posted as a chat reply (its first section carries `CHAT_REPLY_BLOCK`)."""
    ours = (bot_user_id and message.get("user") == bot_user_id) or \
        (bot_id and message.get("bot_id") == bot_id)
    return bool(ours) and any(isinstance(b, dict) and b.get("block_id") == CHAT_REPLY_BLOCK
                              for b in message.get("blocks") or [])


def reply_text(message: dict[str, Any]) -> str:
    """The text of one of the bot's chat replies: its sections, without the cut note."""
    texts = [str((b.get("text") or {}).get("text") or "") for b in message.get("blocks") or []
             if isinstance(b, dict) and b.get("type") == "section"]
    text = _CUT_NOTE.sub("", "\n".join(texts)).replace("@" + JOINER, "@")
    return "" if text.strip() in ("_…_", "_(no reply)_") else from_slack(text).strip()


def _ts(ts: Any) -> tuple[int, int]:
    seconds, _, fraction = str(ts or "0").partition(".")
    return int(seconds or 0), int((fraction or "0")[:6].ljust(6, "0"))


def conversation_turns(messages: Iterable[dict[str, Any]], bot_user_id: str | None,
                       bot_id: str | None, before: str) -> tuple[list[dict[str, str]], bool]:
    """The chat turns of the messages (oldest first) posted before the message `before`: the
    bot's chat replies as the assistant's, people's messages as the user's (one turn when
    several follow each other), other bots' messages and the bot's other messages left out;
    the last `MAX_TURNS`, each at most `MAX_TURN_CHARS`. And whether the bot replied there."""
    turns: list[dict[str, str]] = []
    replied = False
    for m in messages:
        if _ts(m.get("ts")) >= _ts(before):
            continue
        if is_chat_reply(m, bot_user_id, bot_id):
            replied, role, content = True, "assistant", reply_text(m)
        elif m.get("bot_id") or m.get("user") in (None, bot_user_id) or \
                m.get("subtype") not in (None, "thread_broadcast", "file_share"):
            continue
        else:
            role, content = "user", plain_text(str(m.get("text") or ""), bot_user_id)
        content = truncate(content, MAX_TURN_CHARS)
        if not content:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] = truncate(f"{turns[-1]['content']}\n\n{content}", MAX_TURN_CHARS)
        else:
            turns.append({"role": role, "content": content})
    return turns[-MAX_TURNS:], replied


# --- "what can you do?" --------------------------------------------------------------------------

_LEAD = re.compile(r"^(?:(?:hi|hey|hello|ok|okay|so|um|please|pls|lmops|bot)\b[\s,!.:;-]*)+")
_TAIL = re.compile(r"(?:[\s,]+(?:please|pls|lmops|bot|then|exactly|here|again))+$")
_ASKS_WHAT_I_DO = re.compile(
    r"help( me)?|usage|commands|"
    r"what (can|could|do|else can) you (do|help( me)? with)( for me| for us)?|"
    r"what (can|could) (i|we) (do|ask) (you|with you)|"
    r"what (are|r) you( for)?|who (are|r) you|what is this bot|what do you do|"
    r"what does (this bot|lmops) do|what can lmops do|what is lmops for|"
    r"what are your (commands|capabilities|features|skills|abilities|options)|"
    r"(show|list|give) (me )?(the |your |all )?(commands|capabilities|features|options)|"
    r"(what|which) commands( are there| can i use| do you (have|know|support|take))?|"
    r"how (do|can|should) (i|we) use (you|this bot|lmops)|how does (this bot|lmops) work")


def asks_what_i_do(text: str) -> bool:
    """Whether a message to the bot asks what it does ("what can you do?", "help", "what are
    you?"): the whole message, give or take a greeting, punctuation and "please". Questions
    about anything else ("help me write an email", "what can you do about my refund?") are
    not caught."""
    words = " ".join(re.sub(r"[’`]", "'", text).lower().split())
    words = _TAIL.sub("", _LEAD.sub("", words.strip(" \t.!:;,"))).strip(" \t.!?:;,")
    if not words:  # a greeting is small talk; a lone "?" asks what this is
        return bool(re.fullmatch(r"\s*\?+\s*", text))
    return bool(_ASKS_WHAT_I_DO.fullmatch(words))


def capabilities_blocks() -> list[Block]:
    """What lmops does, and where the commands are (a chat reply: its thread is a conversation)."""
    classify = code(COMMAND + " classify labels=bug,billing I was charged twice")
    text = f"""I'm *lmops*: I run small language models for this workspace. I can
• *classify* texts: {classify} (any labels, or a model you trained)
• *chat*: mention me in a channel or send me a DM; in a thread where I answered, I answer \
what follows too
• *keep data sets*: upload a CSV, TSV, JSONL or JSON file in a channel I'm in or in a DM, \
and I check it and store it
• *fine-tune* a model on a data set: {code(COMMAND + " finetune DATASET")}
• *evaluate* a model on a data set: {code(COMMAND + " eval MODEL DATASET")}
{code(COMMAND + " help")} lists every command with examples."""
    return [{**section(text), "block_id": CHAT_REPLY_BLOCK}]


SUBCOMMAND = register_job_subcommand(JobSubcommand(
    name="chat", kind="chat", rank=20,
    description="Ask a chat model; the reply is streamed into the channel.",
    examples=(f"{COMMAND} chat How do I reset my password?",),
    options=("model",), free_text="TEXT",
    missing_text="chat needs a message, like `/lm chat How do I reset my password?`",
    check=lambda request: check_model(request.option("model")), to_params=to_params,
    queued=lambda request: ":thought_balloon: Thinking… the reply appears in this channel.",
    presenter=Presenter(message=message)))
