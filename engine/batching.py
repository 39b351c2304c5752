"""Preprocessing for inference: truncation to the model's limit, length-sorted batches and
dynamic padding, so no batch pays for the longest text of the whole input."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EncodedTexts:
    input_ids: list[list[int]]
    truncated: list[bool]


def model_max_length(tokenizer, config) -> int:
    """The longest input the model takes: the tokenizer's limit, capped by its position table."""
    limits = [tokenizer.model_max_length]
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        limits.append(positions)
    sane = [n for n in limits if isinstance(n, int) and 0 < n < 1_000_000]
    return min(sane) if sane else 512


def encode(tokenizer, texts: Sequence[str], max_length: int) -> EncodedTexts:
    """Tokenize all texts in one call; a text cut to `max_length` is flagged as truncated."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    if enc.encodings is not None:
        truncated = [bool(e.overflowing) for e in enc.encodings]
    else:  # slow tokenizers: ask again without truncation
        full = tokenizer(list(texts), truncation=False)["input_ids"]
        truncated = [len(f) > max_length for f in full]
    return EncodedTexts(input_ids=enc["input_ids"], truncated=truncated)


def length_sorted_batches(
    lengths: Sequence[int], *, batch_size: int, max_batch_tokens: int = 16_384
) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length, longest first (padding stays small)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True)
    batch: list[int] = []
    for index in order:
        longest = lengths[batch[0]] if batch else lengths[index]
        if batch and (len(batch) >= batch_size or longest * (len(batch) + 1) > max_batch_tokens):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad token ids to the batch's longest row; returns input_ids and attention_mask."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask}
