"""Evaluation: metrics and charts for a model on a labeled data set (the `eval` JSON shape).

`evaluate` dispatches on the model's task:
- classifiers (and encoders used zero-shot with label names) are scored with `classify` on a
  classification set: accuracy, macro/weighted F1, per-label precision/recall/F1, a confusion
  matrix, cross-entropy (not for zero-shot, whose probabilities are a softmax of similarities),
  and two charts;
- chat models are scored on a dialogue set: the mean cross-entropy of the assistant tokens under
  the chat template (and its perplexity), and ROUGE-L of greedy replies against each
  conversation's last assistant message, for at most `EvalParams.max_generations` conversations
  of at most `max_new_tokens` tokens each (generation is the slow part on a CPU).

Every run writes `metrics.json` (the returned dict), `params.json` and the charts to its own
folder, by default `<artifacts>/eval/<model>-<UTC timestamp>`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from engine.classify_params import clean_labels
from engine.data import check_labels, load_classification, load_dialogue
from engine.devices import check_device
from engine.errors import DataError, EngineError
from engine.registry import ModelRegistry, ModelSpec
from engine.settings import Settings, get_settings

METRICS_FILE = "metrics.json"
PARAMS_FILE = "params.json"
GENERATIONS_FILE = "generations.jsonl"
# Dialogue: conversations longer than this many tokens keep their end (where the scored reply is).
MAX_DIALOGUE_TOKENS = 1024
# Tokens per forward pass when scoring dialogue: the logits alone take tokens x vocabulary floats.
DIALOGUE_BATCH_TOKENS = 2048
GENERATION_BATCH = 16
# Probabilities are clipped away from 0 so one confident mistake gives a large, finite loss.
_EPS = 1e-15


@dataclass(frozen=True)
class EvalParams:
    """What to evaluate, on which data, and where the metrics and charts go.

    `labels` is the label set for zero-shot evaluation with an encoder (default: the data's own
    labels), or a subset of a fine-tuned classifier's labels. `out_dir` defaults to
    `<artifacts>/eval/<model>-<timestamp>`. `max_generations` and `max_new_tokens` bound the
    greedy replies scored with ROUGE-L for chat models (0 generations: loss only).
    """

    model: str
    data: Path | str
    labels: tuple[str, ...] | None = None
    device: str = "auto"
    out_dir: Path | None = None
    batch_size: int = 64
    text_column: str | None = None
    label_column: str | None = None
    max_generations: int = 32
    max_new_tokens: int = 64

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model must name a model, not {self.model!r}")
        if not str(self.data).strip():
            raise ValueError(f"data must be a data file, not {self.data!r}")
        if self.labels is not None:
            object.__setattr__(self, "labels", clean_labels(self.labels))
        check_device(self.device)
        if self.out_dir is not None:
            object.__setattr__(self, "out_dir", Path(self.out_dir))
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {self.batch_size}")
        if self.max_generations < 0:
            raise ValueError(f"max_generations must be >= 0, not {self.max_generations}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, not {self.max_new_tokens}")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["data"] = str(self.data)
        data["out_dir"] = str(self.out_dir) if self.out_dir else None
        data["labels"] = list(self.labels) if self.labels else None
        return data


def evaluate(
    params: EvalParams, *, settings: Settings | None = None, registry: ModelRegistry | None = None
) -> dict[str, Any]:
    """Score `params.model` on `params.data`; returns the `eval` JSON and writes it as
    `metrics.json` beside the charts.

    Raises `DataError` for unusable data, `LabelMismatchError` (a `DataError`) when the data has
    labels the model doesn't know, and `UnknownModelError` / `ModelLoadError` for the model.
    """
    settings = settings or get_settings()
    registry = registry or ModelRegistry(settings.models_dir)
    spec = registry.resolve(params.model)
    out_dir = params.out_dir or _default_out_dir(settings.artifacts, spec.name)
    if spec.task == "chat":
        metrics = _evaluate_dialogue(spec, params, out_dir, settings, registry)
    else:
        metrics = _evaluate_classification(spec, params, out_dir, settings, registry)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / PARAMS_FILE).write_text(json.dumps(params.to_json(), indent=2))
    (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    return metrics


def _default_out_dir(artifacts: Path, model_name: str) -> Path:
    """`<artifacts>/eval/<model>-<YYYYmmdd-HHMMSS>`, with `-2`, `-3`... if that exists."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(model_name).name or model_name).strip("._") or "model"
    base = Path(artifacts) / "eval" / f"{safe}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


# ----------------------------------------------------------------------------- classification


def classification_metrics(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    labels: Sequence[str],
    probabilities: Sequence[Sequence[float]] | np.ndarray | None = None,
) -> dict[str, Any]:
    """Accuracy, macro/weighted F1, per-label scores, confusion matrix and cross-entropy.

    `labels` are the model's labels in the column order of `probabilities` (one row per example,
    one column per label). Per-label scores, the averages and the confusion matrix cover the
    labels that occur in `y_true` or `y_pred`, in the order of `labels`: a model label absent
    from both has no score to report. `loss` is the mean cross-entropy of the true labels'
    probabilities (None without probabilities). Returns every key of the classification `eval`
    JSON except `plots`. Raises `LabelMismatchError` for true labels outside `labels`.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    y_true, y_pred, labels = [str(y) for y in y_true], [str(y) for y in y_pred], list(labels)
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    if not y_true:
        raise ValueError("classification_metrics needs at least one example, not 0")
    check_labels(y_true, labels)
    stray = sorted(set(y_pred) - set(labels))
    if stray:
        raise ValueError(f"predicted labels {stray!r} are not among labels {labels!r}")
    present = set(y_true) | set(y_pred)
    shown = [label for label in labels if label in present]

    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=shown, zero_division=0)
    averages = {
        avg: precision_recall_fscore_support(y_true, y_pred, labels=shown, average=avg,
                                             zero_division=0)[2]
        for avg in ("macro", "weighted")
    }
    matrix = confusion_matrix(y_true, y_pred, labels=shown)
    loss = None if probabilities is None else cross_entropy(y_true, labels, probabilities)
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(averages["macro"]),
        "weighted_f1": float(averages["weighted"]),
        "loss": loss,
        "per_label": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(shown, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": {"labels": shown, "matrix": matrix.astype(int).tolist()},
    }


def cross_entropy(
    y_true: Sequence[str], labels: Sequence[str], probabilities: Sequence[Sequence[float]] | np.ndarray
) -> float:
    """Mean negative log-probability of each true label (natural log, clipped at 1e-15)."""
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.shape != (len(y_true), len(labels)):
        raise ValueError(f"probabilities have shape {probs.shape}, expected "
                         f"({len(y_true)}, {len(labels)}): one row per example, one column per label")
    column = {label: i for i, label in enumerate(labels)}
    picked = probs[np.arange(len(y_true)), [column[y] for y in y_true]]
    return float(-np.log(np.clip(picked, _EPS, 1.0)).mean())


def _evaluate_classification(
    spec: ModelSpec, params: EvalParams, out_dir: Path, settings: Settings, registry: ModelRegistry
) -> dict[str, Any]:
    from engine.classification import ClassifyParams, classify
    from engine.encoders import load_classifier

    data = load_classification(params.data, text_column=params.text_column,
                               label_column=params.label_column)
    keep = [i for i, (t, y) in enumerate(zip(data.texts, data.labels)) if t.strip() and y.strip()]
    if not keep:
        raise DataError(f"{data.source}: no row has both a text and a label")
    data = data.subset(keep)

    zero_shot = spec.task == "embed"
    if zero_shot:
        labels = list(params.labels or data.label_names)
        if len(labels) < 2:
            raise DataError(f"{data.source}: zero-shot evaluation needs at least two labels, and "
                            f"the data has only {labels!r}; give more labels")
    else:
        model_labels = load_classifier(spec, device=params.device, registry=registry).labels
        if params.labels:
            check_labels(params.labels, model_labels)
        labels = list(params.labels or model_labels)
    check_labels(data.labels, labels)

    predictions = classify(
        data.texts,
        ClassifyParams(model=params.model, labels=tuple(labels) if (zero_shot or params.labels)
                       else None, device=params.device, batch_size=params.batch_size),
        settings=settings, registry=registry,
    )
    probabilities = None if zero_shot else [[p.scores[label] for label in labels]
                                            for p in predictions]
    metrics = classification_metrics(data.labels, [p.label for p in predictions], labels,
                                      probabilities)
    metrics["plots"] = classification_plots(metrics, out_dir)
    return metrics


def classification_plots(metrics: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """The confusion matrix and per-label F1 charts in `out_dir`; {name: absolute path}."""
    from engine.plots import confusion_matrix_png, per_label_f1_png

    cm = metrics["confusion_matrix"]
    return {
        "confusion_matrix": str(confusion_matrix_png(
            cm["labels"], cm["matrix"], out_dir / "confusion_matrix.png").resolve()),
        "per_label_f1": str(per_label_f1_png(
            metrics["per_label"], out_dir / "per_label_f1.png").resolve()),
    }


# ----------------------------------------------------------------------------- text overlap


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1: the longest common subsequence of lower-cased whitespace tokens.

    0.0 when either text has no tokens.
    """
    cand, ref = candidate.lower().split(), reference.lower().split()
    if not cand or not ref:
        return 0.0
    lcs = _lcs_length(cand, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(cand), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def perplexity(loss: float | None) -> float | None:
    """exp(loss), capped to stay finite in JSON."""
    if loss is None:
        return None
    return float(math.exp(min(loss, 700.0)))


# ----------------------------------------------------------------------------- dialogue

Messages = list[dict[str, str]]


def _evaluate_dialogue(
    spec: ModelSpec, params: EvalParams, out_dir: Path, settings: Settings, registry: ModelRegistry
) -> dict[str, Any]:
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
        result["rouge_l"] = float(np.mean(scores))
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
