"""Charts for evaluation and fine-tuning, written as PNG files (headless: the Agg backend).

Every function writes one PNG (creating its folder), closes its figure and returns the path, so a
long-running worker never accumulates open figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display on workers or in the bot's host

import matplotlib.pyplot as plt
import numpy as np

DPI = 110
# Above this many labels the cells are too small for their numbers; the colours still tell.
MAX_ANNOTATED_LABELS = 20


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _label_fontsize(n: int) -> float:
    """Tick label size that stays legible from 2 to ~100 labels."""
    return float(np.clip(11 - n / 12, 7, 10))


def confusion_matrix_png(
    labels: Sequence[str],
    matrix: Sequence[Sequence[float]],
    path: str | Path,
    *,
    normalize: bool = True,
) -> Path:
    """A confusion matrix heat map: true labels down, predicted labels across.

    With `normalize`, each row is divided by its total (the share of that true label predicted
    as each label, so the diagonal is per-label recall); rows without examples stay 0. Figure
    and fonts grow with the number of labels, and cell numbers are hidden above
    `MAX_ANNOTATED_LABELS` labels.
    """
    labels = [str(label) for label in labels]
    counts = np.asarray(matrix, dtype=float)
    n = len(labels)
    if n == 0:
        raise ValueError("confusion_matrix_png needs at least one label, not 0")
    if counts.shape != (n, n):
        raise ValueError(f"matrix has shape {counts.shape}, expected ({n}, {n}) for {n} labels")
    values = counts
    if normalize:
        totals = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)

    side = float(np.clip(2.5 + 0.24 * n, 5, 24))
    fontsize = _label_fontsize(n)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None,
                      interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04,
                 label="share of the true label" if normalize else "rows")
    ticks = np.arange(n)
    ax.set_xticks(ticks, labels, rotation=90 if n > 8 else 45, ha="center" if n > 8 else "right",
                  fontsize=fontsize)
    ax.set_yticks(ticks, labels, fontsize=fontsize)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title("Confusion matrix" + (" (normalised by true label)" if normalize else ""))
    if n <= MAX_ANNOTATED_LABELS:
        threshold = (values.max() or 1) / 2
        for i in range(n):
            for j in range(n):
                text = f"{values[i, j]:.2f}" if normalize else f"{int(counts[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=max(fontsize - 1, 6),
                        color="white" if values[i, j] > threshold else "black")
    return _save(fig, path)


def per_label_f1_png(per_label: Mapping[str, Mapping[str, float] | float], path: str | Path) -> Path:
    """Horizontal bars of each label's F1, best at the top, with the row count (support).

    `per_label` is the evaluation JSON's `per_label` ({label: {"f1", "support", ...}}), or
    simply {label: f1}.
    """
    if not per_label:
        raise ValueError("per_label_f1_png needs at least one label, not an empty mapping")
    rows = []
    for label, value in per_label.items():
        if isinstance(value, Mapping):
            rows.append((str(label), float(value["f1"]), value.get("support")))
        else:
            rows.append((str(label), float(value), None))
    rows.sort(key=lambda r: (r[1], r[0]), reverse=True)
    n = len(rows)
    fontsize = _label_fontsize(n)
    fig, ax = plt.subplots(figsize=(8, float(np.clip(1.2 + 0.22 * n, 3, 24))))
    positions = np.arange(n)
    scores = [r[1] for r in rows]
    ax.barh(positions, scores, color=plt.cm.RdYlGn(np.clip(scores, 0, 1)), edgecolor="grey",
            linewidth=0.3)
    ax.set_yticks(positions, [r[0] for r in rows], fontsize=fontsize)
    ax.set_ylim(n - 0.5, -0.5)  # the best label on top, no empty band above or below
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("F1")
    ax.set_ylabel("label")
    ax.set_title("F1 per label")
    ax.grid(axis="x", alpha=0.3)
    if n <= 40:
        for y, (_, f1, support) in enumerate(rows):
            note = f"{f1:.2f}" + (f"  (n={int(support)})" if support is not None else "")
            ax.text(min(f1, 1) + 0.01, y, note, va="center", fontsize=max(fontsize - 1, 5))
    return _save(fig, path)


def loss_curve_png(
    train: Sequence[tuple[float, float]],
    validation: Sequence[tuple[float, float]],
    path: str | Path,
) -> Path:
    """Training and validation loss against the optimiser step; either list may be empty."""
    if not train and not validation:
        raise ValueError("loss_curve_png needs some (step, loss) points, not two empty lists")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for points, name, style in ((train, "train", "-"), (validation, "validation", "o-")):
        if points:
            steps, losses = zip(*points, strict=True)
            ax.plot(steps, losses, style, label=name, markersize=4, linewidth=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Loss")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)
