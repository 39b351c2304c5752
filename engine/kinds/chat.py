"""The `chat` job kind: one reply from a chat model, streamed into progress as it grows."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from engine.dialogue import ChatParams, check_messages
from engine.errors import CancelledError, DataError
from engine.kinds.spec import PRIORITY_PREDICT, JobContext, JobSpec, register_kind

STREAM_EVERY = 0.5  # seconds between partial replies written to progress


@dataclass(frozen=True)
class ChatJob(ChatParams):
    """A conversation to answer, and how (the `ChatParams` fields)."""

    messages: tuple[dict[str, str], ...] = field(default=(), metadata={
        "help": "the conversation: a message, or [{role, content}, ...] ending with the user's"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.messages:
            raise ValueError("a chat job needs messages: a message or a list of {role, content}")
        try:
            checked = check_messages(self.messages)
        except DataError as error:
            raise ValueError(str(error)) from None
        object.__setattr__(self, "messages", tuple(checked))

    @property
    def how(self) -> ChatParams:
        return ChatParams(**{f.name: getattr(self, f.name) for f in fields(ChatParams)})

    @property
    def question(self) -> str:
        """The last user message."""
        return self.messages[-1]["content"]


def run(job: ChatJob, ctx: JobContext) -> dict[str, Any]:
    from engine.dialogue import chat_stream

    parts: list[str] = []
    last = 0.0
    stream = chat_stream(list(job.messages), job.how, settings=ctx.settings)
    for chunk in stream:
        parts.append(chunk)
        if time.monotonic() - last > STREAM_EVERY:  # the bot streams the partial reply
            ctx.progress({"partial_reply": "".join(parts)})
            last = time.monotonic()
        if ctx.should_cancel():
            raise CancelledError("cancelled while generating")
    # the reply (at its last sentence end when cut), "finish_reason", "truncated", and how the
    # conversation was fit into the model ("input_truncated", "dropped_messages", "shortened_to")
    return stream.result().to_json()


def summarize(result: Mapping[str, Any]) -> str:
    reply = " ".join(str(result.get("reply") or "").split())
    return reply if len(reply) <= 60 else reply[:59] + "…"


SPEC = register_kind(JobSpec(
    name="chat", params=ChatJob, run=run, priority=PRIORITY_PREDICT, lane="predictions",
    summarize=summarize, title="Chat reply", function="engine.dialogue:chat"))
