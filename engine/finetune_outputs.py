"""After training: held-out evaluation, plots, and the saved model folder.

The folder holds the adapter (or full weights), the tokenizer, `labels.json`, `params.json`,
`metrics.json`, the loss curve and, for classification, the confusion matrix. It is written
under a temporary name and renamed at the end, so a crash never leaves half a model.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from engine.encoders import LABELS_FILE
from engine.finetune_params import FinetuneParams
from engine.finetune_setup import PreparedData


def staging_dir(out_dir: Path) -> Path:
    staging = out_dir / "model.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def evaluate_held_out(trainer, params: FinetuneParams, data: PreparedData, folder: Path) -> dict[str, Any]:
    """The contract's evaluation JSON on the held-out rows, with plots written into `folder`."""
    from engine.evaluation import classification_metrics, classification_plots

    plots: dict[str, str] = {}
    if params.task == "classify" and data.validation:
        output = trainer.predict(data.validation)
        logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
        logits = np.asarray(logits, dtype=np.float64)
        probabilities = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probabilities /= probabilities.sum(axis=-1, keepdims=True)
        labels = data.labels or []
        predicted = [labels[i] for i in probabilities.argmax(axis=-1)]
        # the Trainer may batch (and so return) rows in another order: take the truth it returns
        truth = [labels[i] for i in np.asarray(output.label_ids).reshape(-1)]
        metrics = classification_metrics(truth, predicted, labels, probabilities)
        plots.update(classification_plots(metrics, folder))
    elif data.validation:
        loss = float(trainer.evaluate()["eval_loss"])
        metrics = {"n": len(data.validation), "loss": loss,
                   "perplexity": math.exp(loss) if loss < 50 else None}
    else:
        metrics = {"n": 0}
    curve = loss_curve(trainer.state.log_history, folder / "loss_curve.png")
    if curve:
        plots["loss_curve"] = curve
    metrics["plots"] = plots
    return metrics


def loss_curve(log_history: list[dict[str, Any]], path: Path) -> str | None:
    from engine.plots import loss_curve_png

    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    validation = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    if not train and not validation:
        return None
    return str(loss_curve_png(train, validation, path).resolve())


def save_model(trainer, tokenizer, params: FinetuneParams, data: PreparedData,
               metrics: dict[str, Any], out_dir: Path, staging: Path) -> Path:
    """Write weights, tokenizer and records into `staging`, then move it to `out_dir/model`."""
    trainer.model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    if data.labels:
        _write_json(staging / LABELS_FILE, {"labels": data.labels})
    _write_json(staging / "params.json", params.to_json())
    _write_json(staging / "validation_report.json", data.report.to_json())
    final = out_dir / "model"
    metrics_in_final = _relocate_plots(metrics, staging, final)
    _write_json(staging / "metrics.json", metrics_in_final)
    shutil.rmtree(final, ignore_errors=True)
    staging.replace(final)
    metrics.clear()
    metrics.update(metrics_in_final)
    if params.merge and hasattr(trainer.model, "merge_and_unload"):
        merged_tmp = out_dir / "merged.tmp"
        shutil.rmtree(merged_tmp, ignore_errors=True)
        trainer.model.merge_and_unload().save_pretrained(merged_tmp)
        tokenizer.save_pretrained(merged_tmp)
        if data.labels:
            _write_json(merged_tmp / LABELS_FILE, {"labels": data.labels})
        shutil.rmtree(out_dir / "merged", ignore_errors=True)
        merged_tmp.replace(out_dir / "merged")
    return final


def update_metrics_file(model_dir: Path, extra: dict[str, Any]) -> None:
    """Add `extra` to the model's metrics.json (written whole to a temporary file first)."""
    path = model_dir / "metrics.json"
    metrics = {**json.loads(path.read_text()), **extra}
    tmp = path.with_suffix(".json.tmp")
    _write_json(tmp, metrics)
    tmp.replace(path)


def _relocate_plots(metrics: dict[str, Any], staging: Path, final: Path) -> dict[str, Any]:
    plots = {name: str(final.resolve() / Path(path).name) for name, path in metrics.get("plots", {}).items()}
    return {**metrics, "plots": plots}


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str))
