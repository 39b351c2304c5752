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
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from engine.data import check_labels, load_classification
from engine.dialogue_metrics import (  # noqa: F401 (re-exported: the dialogue half of the API)
    DIALOGUE_BATCH_TOKENS,
    GENERATION_BATCH,
    GENERATIONS_FILE,
    MAX_DIALOGUE_TOKENS,
    Messages,
    assistant_token_mask,
    dialogue_metrics,
    evaluate_dialogue,
    generate_replies,
    perplexity,
    render_chat,
    rouge_l,
)
from engine.errors import DataError
from engine.eval_params import EvalParams
from engine.params import resolve_params
from engine.registry import ModelRegistry, ModelSpec
from engine.settings import Settings, get_settings

METRICS_FILE = "metrics.json"
PARAMS_FILE = "params.json"
# Probabilities are clipped away from 0 so one confident mistake gives a large, finite loss.
_EPS = 1e-15


def evaluate(
    params: EvalParams | None = None,
    *,
    settings: Settings | None = None,
    registry: ModelRegistry | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Score `params.model` on `params.data`; returns the `eval` JSON and writes it as
    `metrics.json` beside the charts.

    `params` is an EvalParams, or give its fields as keywords instead:
    `evaluate(model="tickets-v1", data="held_out.csv")`.

    Raises `DataError` for unusable data, `LabelMismatchError` (a `DataError`) when the data has
    labels the model doesn't know, and `UnknownModelError` / `ModelLoadError` for the model.
    """
    params = resolve_params(EvalParams, params, fields, caller="evaluate")
    settings = settings or get_settings()
    registry = registry or ModelRegistry(settings.models_dir)
    spec = registry.resolve(params.model)
    out_dir = params.out_dir or _default_out_dir(settings.artifacts, spec.name)
    if spec.task == "chat":
        metrics = evaluate_dialogue(spec, params, out_dir, settings, registry)
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
