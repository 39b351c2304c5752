"""Text classification: a fine-tuned classifier, or zero-shot labels by embedding similarity."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from engine.batching import encode, length_sorted_batches, pad_batch
from engine.classify_params import ClassifyParams
from engine.encoders import load_classifier, load_encoder
from engine.errors import DataError, LabelMismatchError, NoClassifierError
from engine.int8_check import int8_by_default
from engine.params import resolve_params
from engine.registry import ModelRegistry, ModelSpec
from engine.settings import Settings, get_settings

DEFAULT_CLASSIFIER = "sentiment"
ZERO_SHOT_ENCODER = "minilm"
# Cosine similarities of sentence embeddings sit in a narrow band; this sharpens them into
# probabilities that still rank the labels the same way.
ZERO_SHOT_TEMPERATURE = 0.05
# Embedding "This text is positive." matches texts far better than the bare word "positive".
LABEL_TEMPLATE = "This text is {}."


@dataclass(frozen=True)
class Prediction:
    text: str
    label: str
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "label": self.label, "score": self.score,
                "scores": self.scores, "truncated": self.truncated}


def check_texts(texts: Sequence[str]) -> None:
    if isinstance(texts, str):
        raise TypeError("classify takes a list of texts, not one string")
    if not texts:
        raise DataError("no text to classify")
    empty = [i + 1 for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
        raise DataError(f"empty text: number {shown}" if len(texts) > 1 else "empty text")


def classify(
    texts: str | Sequence[str],
    params: ClassifyParams | None = None,
    *,
    settings: Settings | None = None,
    registry: ModelRegistry | None = None,
    default_model: str | None = None,
    **fields: Any,
) -> list[Prediction]:
    """Label each text, with the winning label's probability and every label's probability.

    `params` is a ClassifyParams, or give its fields as keywords instead:
    `classify(texts, model="sentiment")`, `classify(texts, labels=["bug", "billing"])`.
    One string is classified as a list of one text (the result is still a list).

    Without `params.model`: zero-shot when `params.labels` is given, else `default_model`
    (the workspace's promoted classifier) or the built-in `sentiment`.
    """
    params = resolve_params(ClassifyParams, params, fields, caller="classify")
    if isinstance(texts, str):
        texts = [texts]
    check_texts(texts)
    registry = registry or ModelRegistry((settings or get_settings()).models_dir)
    spec = _choose_model(params, registry, default_model)
    if spec.task == "embed":
        return _zero_shot(texts, spec, params)
    quantize = int8_by_default(spec) if params.quantize is None else params.quantize
    loaded = load_classifier(spec, device=params.device, quantize=quantize, registry=registry)
    keep = _label_subset(loaded.labels, params.labels)
    return _predict(
        texts, loaded.tokenizer, loaded.max_length, params.batch_size, loaded.device,
        lambda batch: loaded.model(**batch).logits.float(), loaded.labels, keep,
    )


def _choose_model(params: ClassifyParams, registry: ModelRegistry, default: str | None) -> ModelSpec:
    if params.model:
        spec = registry.resolve(params.model)
        if spec.task == "chat":
            raise NoClassifierError(f"{spec.name!r} is a chat model; name a classifier or an encoder")
        if spec.task == "embed" and not params.labels:
            raise NoClassifierError(
                f"{spec.name!r} is an encoder without a classification head: give --labels a,b,c "
                "for zero-shot classification, or fine-tune it first")
        return spec
    if params.labels:
        return registry.resolve(ZERO_SHOT_ENCODER)
    name = default or DEFAULT_CLASSIFIER
    if name not in registry.names():
        raise NoClassifierError(
            "no classifier yet: name one with --model NAME (see `lmops models`), "
            "or give --labels a,b,c for zero-shot classification")
    return registry.resolve(name)


def _label_subset(model_labels: list[str], wanted: tuple[str, ...] | None) -> list[int] | None:
    if not wanted:
        return None
    unknown = [l for l in wanted if l not in model_labels]
    if unknown:
        raise LabelMismatchError(
            f"labels the model doesn't know: {', '.join(unknown)} (it knows: {', '.join(model_labels)})")
    return [model_labels.index(l) for l in wanted]


def _predict(
    texts: Sequence[str],
    tokenizer,
    max_length: int,
    batch_size: int,
    device: torch.device,
    logits_of: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    labels: Sequence[str],
    keep: list[int] | None,
) -> list[Prediction]:
    encoded = encode(tokenizer, texts, max_length)
    lengths = [len(ids) for ids in encoded.input_ids]
    probabilities = torch.empty((len(texts), len(keep or labels)))
    with torch.inference_mode():
        for indices in length_sorted_batches(lengths, batch_size=batch_size):
            batch = pad_batch([encoded.input_ids[i] for i in indices], tokenizer.pad_token_id or 0)
            logits = logits_of({k: v.to(device) for k, v in batch.items()}).cpu()
            if keep is not None:
                logits = logits[:, keep]
            probabilities[indices] = logits.softmax(dim=-1)
    names = [labels[i] for i in keep] if keep is not None else list(labels)
    return _to_predictions(texts, names, probabilities, encoded.truncated)


def _to_predictions(
    texts: Sequence[str], names: Sequence[str], probabilities: torch.Tensor, truncated: Sequence[bool]
) -> list[Prediction]:
    best_scores, best = probabilities.max(dim=-1)
    rows = probabilities.tolist()
    return [
        Prediction(
            text=text, label=names[int(best[i])], score=float(best_scores[i]),
            scores=dict(zip(names, rows[i], strict=True)), truncated=bool(truncated[i]),
        )
        for i, text in enumerate(texts)
    ]


def embed(
    texts: Sequence[str], spec: ModelSpec, *, device: str = "auto", batch_size: int = 64
) -> tuple[torch.Tensor, list[bool]]:
    """L2-normalised mean-pooled sentence embeddings in input order, and which were truncated."""
    loaded = load_encoder(spec, device=device)
    encoded = encode(loaded.tokenizer, texts, loaded.max_length)
    lengths = [len(ids) for ids in encoded.input_ids]
    out = torch.empty((len(texts), loaded.model.config.hidden_size))
    with torch.inference_mode():
        for indices in length_sorted_batches(lengths, batch_size=batch_size):
            batch = pad_batch([encoded.input_ids[i] for i in indices], loaded.tokenizer.pad_token_id or 0)
            batch = {k: v.to(loaded.device) for k, v in batch.items()}
            hidden = loaded.model(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out[indices] = torch.nn.functional.normalize(pooled, dim=-1).cpu()
    return out, encoded.truncated


def _zero_shot(texts: Sequence[str], spec: ModelSpec, params: ClassifyParams) -> list[Prediction]:
    assert params.labels
    label_texts = [LABEL_TEMPLATE.format(label.replace("_", " ").replace("-", " ")) for label in params.labels]
    label_vectors, _ = embed(label_texts, spec, device=params.device)
    text_vectors, truncated = embed(texts, spec, device=params.device, batch_size=params.batch_size)
    probabilities = (text_vectors @ label_vectors.T / ZERO_SHOT_TEMPERATURE).softmax(dim=-1)
    return _to_predictions(texts, params.labels, probabilities, truncated)
