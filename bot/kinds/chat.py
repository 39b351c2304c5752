"""`/lm chat`, mentions and DMs: a reply from a chat model, streamed into one message."""

from __future__ import annotations

from typing import Any

from bot.blocks import chat_reply_blocks, job_failed_blocks, job_status_blocks
from bot.blocks_base import Block, context, fit
from bot.command_text import clean
from bot.grammar import COMMAND, CommandError, check_model
from bot.job_requests import Origin, params_or_error, resolve_model
from bot.kinds.base import (
    JobJSON,
    JobRequest,
    JobSubcommand,
    Presenter,
    register_job_subcommand,
)
from bot.mrkdwn import escape, mention, truncate
from bot.store import BotStore
from engine.kinds.chat import ChatJob


async def chat_params(store: BotStore, origin: Origin, text: str, model: str | None) -> ChatJob:
    """A reply to `text` with the named model or the workspace's promoted chat model (NUL,
    control characters and bidi overrides taken out: mentions and DMs come this way)."""
    text = clean(text)
    if not text.strip():
        raise CommandError("ask me something, like `@lmops how do I reset my password?`")
    if model:
        model, task = await resolve_model(store, origin, model)
        if task not in (None, "chat"):
            raise CommandError(f"{model!r} is not a chat model; `/lm models` lists them")
    else:
        model = await store.promoted(origin.workspace_id, "chat")
    values: dict[str, Any] = {"messages": ({"role": "user", "content": text.strip()},)}
    if model:
        values["model"] = model
    return params_or_error(ChatJob, **values)


async def to_params(store: BotStore, origin: Origin, request: JobRequest
                    ) -> tuple[ChatJob, dict[str, Any]]:
    return await chat_params(store, origin, request.text, request.option("model")), {}


def message(job: JobJSON) -> list[Block]:
    """The reply as it grows; a `/lm chat` (invisible to the channel) shows what was asked."""
    status, result = job.get("status"), job.get("result") or {}
    params = job.get("params") or {}
    model = result.get("model") or params.get("model")
    if status == "succeeded":
        blocks = chat_reply_blocks(str(result.get("reply") or ""), model=model)
    elif status == "failed":
        blocks = job_failed_blocks(job)
    elif status == "cancelled":
        blocks = job_status_blocks(job)
    else:
        partial = str((job.get("progress") or {}).get("partial_reply") or "")
        blocks = chat_reply_blocks(partial, model=model, streaming=True)
    if job.get("thread_ts"):  # a reply under the question
        return blocks
    messages = params.get("messages") or []
    question = messages[-1].get("content", "") if messages and isinstance(messages[-1], dict) \
        else ""
    asker = f"{mention(job['user_id'])} asked: " if job.get("user_id") else ""
    return fit([context([asker + escape(truncate(" ".join(question.split()), 300))]), *blocks])


SUBCOMMAND = register_job_subcommand(JobSubcommand(
    name="chat", kind="chat", rank=20,
    description="Ask a chat model; the reply is streamed into the channel.",
    examples=(f"{COMMAND} chat How do I reset my password?",),
    options=("model",), free_text="TEXT",
    missing_text="chat needs a message, like `/lm chat How do I reset my password?`",
    check=lambda request: check_model(request.option("model")), to_params=to_params,
    queued=lambda request: ":thought_balloon: Thinking… the reply appears in this channel.",
    presenter=Presenter(message=message)))
