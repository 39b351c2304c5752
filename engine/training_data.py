"""Tokenized training examples: classification rows and chat conversations whose loss counts
only the assistant's tokens. Padding happens per batch in transformers' collators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.evaluation import assistant_token_mask

IGNORE_INDEX = -100


class Examples(list):
    """A list of feature dicts; Trainer needs only `len` and indexing (no `datasets` package)."""


def classification_examples(
    tokenizer, texts: Sequence[str], labels: Sequence[str], label_ids: dict[str, int], max_length: int
) -> Examples:
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    return Examples(
        {"input_ids": ids, "attention_mask": mask, "labels": label_ids[label]}
        for ids, mask, label in zip(encoded["input_ids"], encoded["attention_mask"], labels, strict=True)
    )


def dialogue_examples(tokenizer, conversations: Sequence[list[dict[str, str]]], max_length: int) -> Examples:
    """Chat-template token ids per conversation; labels are -100 outside assistant replies.

    Conversations longer than `max_length` keep their beginning; one with no assistant token left
    after truncation is dropped (it would teach nothing).
    """
    out = Examples()
    for messages in conversations:
        ids, mask = assistant_token_mask(tokenizer, messages)
        ids, mask = ids[:max_length], mask[:max_length]
        if not any(mask):
            continue
        labels = [tok if keep else IGNORE_INDEX for tok, keep in zip(ids, mask, strict=True)]
        out.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return out


def collator_for(task: str, tokenizer) -> Any:
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding

    if task == "classify":
        return DataCollatorWithPadding(tokenizer)
    # pads `labels` with -100 too, which plain DataCollatorWithPadding does not
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX)
