"""Dialogue evaluation of chat models: the mean cross-entropy of the assistant tokens under the
chat template (and its perplexity), and ROUGE-L of greedy replies against each conversation's
last assistant message (`engine.evaluation.evaluate` dispatches here for chat models).

Torch is imported inside the functions that run the model.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.data import load_dialogue
from engine.errors import DataError, EngineError
from engine.eval_params import EvalParams
from engine.registry import ModelRegistry, ModelSpec
from engine.settings import Settings

GENERATIONS_FILE = "generations.jsonl"
# Conversations longer than this many tokens keep their end (where the scored reply is).
MAX_DIALOGUE_TOKENS = 1024
# Tokens per forward pass when scoring dialogue: the logits alone take tokens x vocabulary floats.
DIALOGUE_BATCH_TOKENS = 2048
GENERATION_BATCH = 16


# ----------------------------------------------------------------------------- text overlap


class _WordTokenizer:
    """Lower-cased runs of letters and digits: rouge-score's default tokenizer on ASCII text
    (which drops every other character), extended to any script."""

    def tokenize(self, text: str) -> list[str]:
        return _WORD.findall(text.lower())


_WORD = re.compile(r"[^\W_]+")


@functools.cache
def _rouge_l_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=_WordTokenizer())


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F-measure (0..1) of `candidate` against `reference`, with Google's rouge-score:
    the longest common subsequence of lower-cased words (punctuation ignored).

    0.0 when either text has no words.
    """
    return float(_rouge_l_scorer().score(reference, candidate)["rougeL"].fmeasure)


def perplexity(loss: float | None) -> float | None:
    """exp(loss), capped to stay finite in JSON."""
    if loss is None:
        return None
    return float(math.exp(min(loss, 700.0)))


# ----------------------------------------------------------------------------- dialogue

Messages = list[dict[str, str]]


def evaluate_dialogue(
    spec: ModelSpec, params: EvalParams, out_dir: Path, settings: Settings, registry: ModelRegistry
) -> dict[str, Any]:
    """`dialogue_metrics` of the chat model `spec` on the dialogue set `params.data`."""
    from engine.causal_lm import load_causal_lm

    data = load_dialogue(params.data)
    conversations = [c for c in data.conversations if _last_reply(c) is not None]
    if not conversations:
        raise DataError(f"{data.source}: no conversation has a non-empty assistant reply after "
                        "another message, so there is nothing to score")
    model, tokenizer = load_causal_lm(spec, device=params.device, cache_dir=settings.cache_dir,
                                      registry=registry)
    return dialogue_metrics(model, tokenizer, conversations, params, out_dir)


def dialogue_metrics(
    model, tokenizer, conversations: Sequence[Messages], params: EvalParams, out_dir: Path | None
) -> dict[str, Any]:
    """Loss and perplexity of the assistant tokens, and ROUGE-L of greedy replies.

    Every assistant message after the first message is scored (the chat template's own tokens
    around it, such as the end-of-turn marker, count as the reply's). ROUGE-L compares the reply
    generated for the first `params.max_generations` conversations, given everything before
    their last assistant message, with that message; the replies go to `generations.jsonl` in
    `out_dir`. Returns the dialogue `eval` JSON (`plots` is empty: there is no chart yet).
    """
    nll, tokens, scored = _assistant_loss(model, tokenizer, conversations, params.batch_size)
    if tokens == 0:
        raise DataError("no assistant tokens to score in these conversations")
    loss = nll / tokens
    result: dict[str, Any] = {"n": scored, "loss": loss, "perplexity": perplexity(loss),
                              "rouge_l": None, "plots": {}}
    chosen = [c for c in conversations if _last_reply(c) is not None][: params.max_generations]
    if chosen:
        prompts = [c[: _last_reply(c)] for c in chosen]
        references = [c[_last_reply(c)]["content"] for c in chosen]
        replies = generate_replies(model, tokenizer, prompts, max_new_tokens=params.max_new_tokens)
        scores = [rouge_l(r, ref) for r, ref in zip(replies, references, strict=True)]
        result["rouge_l"] = sum(scores) / len(scores)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / GENERATIONS_FILE).write_text("".join(
                json.dumps({"prompt": prompt[-1]["content"], "reference": ref, "reply": reply,
                            "rouge_l": score}) + "\n"
                for prompt, ref, reply, score in zip(prompts, references, replies, scores)
            ), encoding="utf-8")
    return result


def _last_reply(messages: Messages) -> int | None:
    """Index of the last non-empty assistant message that follows another message."""
    for i in range(len(messages) - 1, 0, -1):
        if messages[i]["role"] == "assistant" and messages[i]["content"].strip():
            return i
    return None


def render_chat(tokenizer, messages: Messages, *, add_generation_prompt: bool = False) -> str:
    """The conversation as the model sees it: its chat template, else `role: content` lines."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
    return text + ("assistant: " if add_generation_prompt else "")


def assistant_token_mask(tokenizer, messages: Messages) -> tuple[list[int], list[bool]]:
    """Token ids of the rendered conversation, and which of them belong to assistant replies.

    The template is rendered before and after each assistant message; the text between the two
    is the reply (with the template's end-of-turn tokens). Each piece is tokenized on its own,
    so the boundaries are exact.
    """
    full = render_chat(tokenizer, messages)
    spans: list[tuple[int, int]] = []
    for k, message in enumerate(messages):
        if k == 0 or message["role"] != "assistant" or not message["content"].strip():
            continue
        before = render_chat(tokenizer, messages[:k], add_generation_prompt=True)
        after = render_chat(tokenizer, messages[: k + 1])
        if not (after.startswith(before) and full.startswith(after)):
            raise EngineError("the model's chat template does not render a conversation one "
                              "message after another, so its replies can't be scored")
        spans.append((len(before), len(after)))
    ids: list[int] = []
    mask: list[bool] = []
    position = 0
    for start, end in [*spans, (len(full), len(full))]:
        for text, is_reply in ((full[position:start], False), (full[start:end], True)):
            if text:
                piece = tokenizer(text, add_special_tokens=False)["input_ids"]
                ids += piece
                mask += [is_reply] * len(piece)
        position = end
    return ids, mask


def _assistant_loss(model, tokenizer, conversations: Sequence[Messages], batch_size: int):
    """(summed negative log-likelihood, scored tokens, scored conversations)."""
    import torch

    from engine.batching import length_sorted_batches

    encoded = []
    for messages in conversations:
        ids, mask = assistant_token_mask(tokenizer, messages)
        encoded.append((ids[-MAX_DIALOGUE_TOKENS:], mask[-MAX_DIALOGUE_TOKENS:]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    total, count, scored = 0.0, 0, 0
    lengths = [len(ids) for ids, _ in encoded]
    with torch.inference_mode():
        for indices in length_sorted_batches(lengths, batch_size=batch_size,
                                             max_batch_tokens=DIALOGUE_BATCH_TOKENS):
            width = max(lengths[i] for i in indices)
            ids = torch.full((len(indices), width), pad, dtype=torch.long)
            attention = torch.zeros((len(indices), width), dtype=torch.long)
            targets = torch.full((len(indices), width), -100, dtype=torch.long)
            for row, i in enumerate(indices):
                row_ids, row_mask = encoded[i]
                ids[row, : len(row_ids)] = torch.tensor(row_ids)
                attention[row, : len(row_ids)] = 1
                keep = torch.tensor(row_mask, dtype=torch.bool)
                targets[row, : len(row_ids)] = torch.where(keep, torch.tensor(row_ids), -100)
            logits = model(input_ids=ids.to(device), attention_mask=attention.to(device)).logits
            logits = logits[:, -width:]  # prompt-tuning adapters prepend virtual tokens
            shifted = targets[:, 1:].to(device)
            losses = torch.nn.functional.cross_entropy(
                logits[:, :-1].float().transpose(1, 2), shifted, ignore_index=-100,
                reduction="none")
            total += float(losses.sum())
            count += int((shifted != -100).sum())
            scored += int(((shifted != -100).sum(dim=1) > 0).sum())
    return total, count, scored


def generate_replies(model, tokenizer, prompts: Sequence[Messages], *, max_new_tokens: int
                     ) -> list[str]:
    """Greedy replies to each conversation, batched with left padding."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    encoded = [tokenizer(render_chat(tokenizer, p, add_generation_prompt=True),
                         add_special_tokens=False)["input_ids"][-MAX_DIALOGUE_TOKENS:]
               for p in prompts]
    replies: list[str] = [""] * len(prompts)
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    with torch.inference_mode():
        for start in range(0, len(order), GENERATION_BATCH):
            indices = order[start: start + GENERATION_BATCH]
            width = max(len(encoded[i]) for i in indices)
            ids = torch.full((len(indices), width), pad or 0, dtype=torch.long)
            attention = torch.zeros((len(indices), width), dtype=torch.long)
            for row, i in enumerate(indices):
                ids[row, width - len(encoded[i]):] = torch.tensor(encoded[i])
                attention[row, width - len(encoded[i]):] = 1
            out = model.generate(input_ids=ids.to(device), attention_mask=attention.to(device),
                                 max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=pad)
            for row, i in enumerate(indices):
                replies[i] = tokenizer.decode(out[row, width:], skip_special_tokens=True).strip()
    return replies
