"""Dialogue: one reply from a chat model, whole (`chat`) or streamed as it is generated (`chat_stream`).

A conversation longer than the model reads is fit into it (`fit_conversation`); a reply cut
at `max_new_tokens` says so (`finish_reason` "length") and ends at a sentence where it can.

Importing this module imports no torch (the bot and the queue validate `ChatParams`); the model
is loaded on the first reply and kept by `engine.model_cache`. On CPU, Llama-architecture models
(the built-in `smollm2`) decode through `engine.causal_lm.FastLlama`; anything else goes through
transformers' `generate` in a thread.
"""

from __future__ import annotations

import math
import queue
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from engine.devices import DEVICES
from engine.errors import DataError, EngineError
from engine.params import resolve_params
from engine.registry import ModelRegistry, ModelSpec
from engine.settings import Settings, get_settings

ROLES = ("system", "user", "assistant")
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


@dataclass(frozen=True)
class ChatParams:
    """How to reply: which model, how many new tokens, greedy (temperature 0) or sampled."""

    model: str = field(default="smollm2", metadata={
        "help": "chat model to reply with: a model name, folder or hub id"})
    max_new_tokens: int = field(default=128, metadata={
        "help": "the most tokens the reply may have (1 to 4096)"})
    temperature: float = field(default=0.0, metadata={
        "help": "0 picks the likeliest token every time (the same reply each time); higher "
                "values sample more varied replies"})
    top_p: float = field(default=1.0, metadata={
        "help": "when sampling, draw only from the likeliest tokens that together hold this "
                "share of the probability (0 to 1; 1 keeps them all)"})
    device: str = field(default="auto", metadata={
        "help": "where to run: auto (CUDA if available, else CPU), cpu, cuda or cuda:N",
        "choices": DEVICES})
    system: str | None = field(default=None, metadata={
        "help": "a system prompt that sets how the model behaves (replaces any in the messages)"})

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model {self.model!r} is not a model name")
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) \
                or not 1 <= self.max_new_tokens <= 4096:
            raise ValueError(f"max_new_tokens must be a whole number from 1 to 4096, not {self.max_new_tokens!r}")
        if not _number(self.temperature) or self.temperature < 0:
            raise ValueError(f"temperature must be 0 (greedy) or more, not {self.temperature!r}")
        if not _number(self.top_p) or not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], not {self.top_p!r}")
        if not isinstance(self.device, str) or not _DEVICE.match(self.device):
            raise ValueError(f"device {self.device!r} is not one of auto, cpu, cuda")
        if self.system is not None and not isinstance(self.system, str):
            raise ValueError(f"system must be text, not {self.system!r}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class ChatReply:
    """A reply, the model that wrote it, how long it took, whether it was cut at
    `max_new_tokens` (`finish_reason` "length"), and how the conversation was fit into the
    model: `dropped_messages` oldest ones left out, the last one `shortened_to` its last N tokens."""

    reply: str
    model: str
    tokens: int = 0
    seconds: float = 0.0
    first_token_seconds: float | None = None
    finish_reason: str = "stop"
    max_new_tokens: int | None = None
    dropped_messages: int = 0
    shortened_to: int | None = None

    @property
    def truncated(self) -> bool:  # cut at max_new_tokens
        return self.finish_reason == "length"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reply": self.reply, "model": self.model,
                               "finish_reason": self.finish_reason, "truncated": self.truncated}
        if self.truncated:
            out["max_new_tokens"] = self.max_new_tokens
        if self.dropped_messages or self.shortened_to is not None:
            out.update(input_truncated=True, dropped_messages=self.dropped_messages,
                       shortened_to=self.shortened_to)
        return out


class ChatStream(Iterator[str]):
    """The text chunks of a reply as they are generated; once they are all read, `result()` is
    the whole `ChatReply` (cut at a sentence end when it ran out of tokens)."""

    def __init__(self, chunks: Iterator[str], params: ChatParams, stats: dict[str, Any]) -> None:
        self._chunks, self.params, self.stats = chunks, params, stats
        self._parts: list[str] = []

    def __next__(self) -> str:
        self._parts.append(chunk := next(self._chunks))
        return chunk

    @property
    def finish_reason(self) -> str | None:  # "stop", "length" (cut), None while generating
        return self.stats.get("finish_reason")

    def result(self) -> ChatReply:
        """The reply so far (all of it once the stream is read), and how it was made."""
        cut = self.finish_reason == "length"
        text = "".join(self._parts).strip()
        return ChatReply(
            reply=sentence_end(text) if cut else text, model=self.params.model,
            tokens=self.stats.get("tokens", 0),
            seconds=time.perf_counter() - self.stats["started"],
            first_token_seconds=self.stats.get("first_token_seconds"),
            finish_reason=self.finish_reason or "stop",
            max_new_tokens=self.stats.get("max_new_tokens", self.params.max_new_tokens),
            dropped_messages=self.stats.get("dropped_messages", 0),
            shortened_to=self.stats.get("shortened_to"))


# The end of a sentence: .!? (or their CJK forms, or an ellipsis) after a letter or a closing
# mark, then optional closing quotes/brackets, then a space; or a line end.
_SENTENCE_END = re.compile(r"(?<=[^\W\d_]|[)\]\"'*_`])[.!?…。！？][\"')\]*_]*(?=\s|$)|\n")


def sentence_end(text: str, keep: float = 0.6) -> str:
    """A cut reply up to its last sentence end, when that keeps at least `keep` of it."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[:ends[-1]].rstrip() if ends and ends[-1] >= keep * len(text) else text


def chat(
    messages: str | Sequence[dict[str, str]],
    params: ChatParams | None = None,
    *,
    settings: Settings | None = None,
    **fields: Any,
) -> ChatReply:
    """The model's reply to a message, or to a conversation of `{"role", "content"}` messages.

    `params` is a ChatParams, or give its fields as keywords instead:
    `chat("hi", model="smollm2", max_new_tokens=64)`.
    """
    stream = _stream(messages, resolve_params(ChatParams, params, fields, caller="chat"), settings)
    for _ in stream:
        pass
    return stream.result()


def chat_stream(
    messages: str | Sequence[dict[str, str]],
    params: ChatParams | None = None,
    *,
    settings: Settings | None = None,
    **fields: Any,
) -> ChatStream:
    """The reply of `chat`, as text chunks while they are generated; they join to `chat`'s reply
    (which, when cut at `max_new_tokens`, ends at its last sentence). `.result()` is the
    `ChatReply` once they are read.

    `params` is a ChatParams, or its fields as keywords, as for `chat`. The input is checked and
    the model loaded before the first chunk, so errors come at once.
    """
    return _stream(messages, resolve_params(ChatParams, params, fields, caller="chat_stream"), settings)


def check_messages(messages: str | Sequence[dict[str, str]], system: str | None = None
                   ) -> list[dict[str, str]]:
    """A conversation ending with a user message; `system` replaces any system message."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, (list, tuple)):
        raise DataError(f"a chat takes a message or a list of {{'role', 'content'}} messages, "
                        f"not {type(messages).__name__}")
    if not messages:
        raise DataError("empty message")
    checked = []
    for n, message in enumerate(messages, 1):
        if not isinstance(message, dict) or set(message) - {"role", "content"} or "role" not in message:
            raise DataError(f"message {n} must be {{'role': ..., 'content': ...}}, not {message!r}")
        role, content = message["role"], message.get("content")
        if role not in ROLES:
            raise DataError(f"message {n} has role {role!r}; use one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise DataError(f"message {n} has no text content: {content!r}")
        checked.append({"role": role, "content": content})
    if checked[-1]["role"] != "user":
        raise DataError(f"the last message must be the user's, not the {checked[-1]['role']}'s")
    if not checked[-1]["content"].strip():
        raise DataError("empty message")
    if system is not None:
        checked = [{"role": "system", "content": system}] + [m for m in checked if m["role"] != "system"]
    return checked


def _chat_spec(params: ChatParams, registry: ModelRegistry) -> ModelSpec:
    spec = registry.resolve(params.model)
    if spec.task != "chat" and (spec.builtin or spec.created):
        raise EngineError(f"model {spec.name!r} is a {spec.task} model, not a chat model "
                          "(try smollm2)")
    return spec


def _stream(messages, params: ChatParams, settings: Settings | None) -> ChatStream:
    """Checks, loads and fits the conversation eagerly, then streams the reply."""
    from engine.causal_lm import load_causal_lm

    stats: dict[str, Any] = {"started": time.perf_counter()}
    conversation = check_messages(messages, params.system)
    settings = settings or get_settings()
    registry = ModelRegistry(settings.models_dir)
    spec = _chat_spec(params, registry)
    model, tokenizer = load_causal_lm(spec, device=params.device, cache_dir=settings.cache_dir,
                                      fast=True, registry=registry)
    limit = getattr(model.config, "max_position_embeddings", None)
    new_tokens = min(params.max_new_tokens, limit // 2) if limit else params.max_new_tokens
    params = replace(params, max_new_tokens=new_tokens)
    stats["max_new_tokens"] = new_tokens
    ids = fit_conversation(tokenizer, conversation, limit and limit - new_tokens, stats, spec.name)
    tokens = _token_ids(model, ids, params, _eos_ids(model, tokenizer))
    return ChatStream(_finished(_text_chunks(tokenizer, tokens, stats), stats, new_tokens),
                      params, stats)


def _finished(chunks: Iterator[str], stats: dict[str, Any], limit: int) -> Iterator[str]:
    yield from chunks
    stats["finish_reason"] = "length" if stats.get("tokens", 0) >= limit else "stop"


def fit_conversation(tokenizer, conversation: list[dict[str, str]], budget: int | None,
                     stats: dict[str, Any], model_name: str = "the model") -> list[int]:
    """The prompt's token ids within `budget`: the leading system messages and the last message
    are kept, the fewest oldest turns left out (`stats["dropped_messages"]`), then the start of
    the last message cut (`stats["shortened_to"]`: the tokens of it kept)."""
    ids = _encode(tokenizer, conversation)
    if budget is None or len(ids) <= budget:
        return ids
    head = 0
    while head < len(conversation) - 1 and conversation[head]["role"] == "system":
        head += 1
    system, turns, last = conversation[:head], conversation[head:-1], conversation[-1]
    low, high, fitted = 1, len(turns), None  # the fewest oldest turns to drop
    while low <= high:
        middle = (low + high) // 2
        if len(candidate := _encode(tokenizer, [*system, *turns[middle:], last])) <= budget:
            fitted, high = candidate, middle - 1
        else:
            low = middle + 1
    stats["dropped_messages"] = min(low, len(turns))
    if fitted is not None:
        return fitted
    overhead = len(_encode(tokenizer, [*system, {**last, "content": ""}]))
    content = tokenizer(last["content"], add_special_tokens=False)["input_ids"]
    keep = budget - overhead
    while keep > 0:
        text = tokenizer.decode(content[-keep:], skip_special_tokens=True).lstrip("\ufffd")
        if len(ids := _encode(tokenizer, [*system, {**last, "content": text}])) <= budget:
            stats["shortened_to"] = keep
            return ids
        keep -= len(ids) - budget
    raise DataError(f"the conversation is too long for {model_name}: the system prompt and "
                    f"the message's start take more than the {budget} tokens it reads")


def _encode(tokenizer, conversation: list[dict[str, str]]) -> list[int]:
    return tokenizer(_render(tokenizer, conversation), add_special_tokens=False)["input_ids"]


def _render(tokenizer, conversation: list[dict[str, str]]) -> str:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    return "".join(f"{m['role']}: {m['content']}\n" for m in conversation) + "assistant:"


def _eos_ids(model, tokenizer) -> frozenset[int]:
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return frozenset(ids)


def _text_chunks(tokenizer, token_ids: Iterator[int], stats: dict[str, Any]) -> Iterator[str]:
    """Decode as tokens arrive: no leading or trailing whitespace, no half characters."""
    started = stats.get("started") or time.perf_counter()
    ids: list[int] = []
    sent = ""
    for token in token_ids:
        if not ids:
            stats["first_token_seconds"] = time.perf_counter() - started
        ids.append(token)
        stats["tokens"] = len(ids)
        text = tokenizer.decode(ids, skip_special_tokens=True).strip()
        if text.endswith("\ufffd") or len(text) <= len(sent) or not text.startswith(sent):
            continue
        yield text[len(sent):]
        sent = text


def _token_ids(model, prompt: list[int], params: ChatParams, eos: frozenset[int]) -> Iterator[int]:
    from engine.causal_lm import fast_decoder

    decoder = fast_decoder(model)
    if decoder is None:
        return _generate_ids(model, prompt, params, eos)
    return _fast_ids(decoder.session(len(prompt) + params.max_new_tokens), prompt, params, eos)


def _fast_ids(session, prompt: list[int], params: ChatParams, eos: frozenset[int]) -> Iterator[int]:
    logits = session.feed(prompt)
    for step in range(params.max_new_tokens):
        token = _pick(logits, params)
        if token in eos:
            return
        yield token
        if step + 1 < params.max_new_tokens:
            logits = session.feed([token])


def _pick(logits, params: ChatParams) -> int:
    """Greedy at temperature 0, else a sample from the top-p nucleus."""
    import torch

    if params.temperature == 0:
        return int(logits.argmax())
    probs = torch.softmax(logits.float() / params.temperature, -1)
    if params.top_p < 1:
        sorted_probs, order = probs.sort(descending=True)
        keep = sorted_probs.cumsum(0) - sorted_probs < params.top_p
        probs = torch.zeros_like(probs).scatter_(0, order[keep], sorted_probs[keep])
    return int(torch.multinomial(probs, 1))


def _generate_ids(model, prompt: list[int], params: ChatParams, eos: frozenset[int]) -> Iterator[int]:
    """transformers' `generate` in a thread, its tokens handed over through a queue."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList
    from transformers.generation.streamers import BaseStreamer

    tokens: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()

    class Streamer(BaseStreamer):
        prompt_seen = False

        def put(self, value) -> None:
            if self.prompt_seen:
                tokens.put(value.reshape(-1).tolist())
            self.prompt_seen = True

        def end(self) -> None:
            tokens.put(None)

    class Stop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)

    device = next(model.parameters()).device
    sampling = {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p} \
        if params.temperature > 0 else {"do_sample": False}

    def run() -> None:
        try:
            with torch.inference_mode():
                model.generate(
                    input_ids=torch.tensor([prompt], device=device),
                    attention_mask=torch.ones(1, len(prompt), dtype=torch.long, device=device),
                    max_new_tokens=params.max_new_tokens, eos_token_id=sorted(eos) or None,
                    streamer=Streamer(), stopping_criteria=StoppingCriteriaList([Stop()]), **sampling)
        except Exception as e:  # noqa: BLE001 - handed to the reader, which raises it
            tokens.put(e)
            tokens.put(None)

    thread = threading.Thread(target=run, name="chat-generate", daemon=True)
    thread.start()
    try:
        while (item := tokens.get()) is not None:
            if isinstance(item, Exception):
                raise EngineError(f"generation failed: {item}") from item
            for token in item:
                if token in eos:
                    return
                yield token
    finally:
        stop.set()
