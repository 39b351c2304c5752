"""engine.plots: each chart is a real PNG, from 2 labels to BANKING77's 77, and closes its figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from engine.plots import confusion_matrix_png, loss_curve_png, per_label_f1_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_backend_is_headless() -> None:
    assert matplotlib.get_backend().lower() == "agg"


def test_confusion_matrix_small(tmp_path: Path) -> None:
    path = confusion_matrix_png(["negative", "positive"], [[3, 1], [0, 4]], tmp_path / "cm.png")
    assert path == tmp_path / "cm.png"
    assert_png(path)
    assert plt.get_fignums() == []


def test_confusion_matrix_counts_and_empty_rows(tmp_path: Path) -> None:
    path = confusion_matrix_png(["a", "b", "c"], [[2, 0, 0], [0, 0, 0], [1, 0, 5]],
                                tmp_path / "deep" / "cm.png", normalize=False)
    assert_png(path)


def test_plots_with_77_labels(tmp_path: Path) -> None:
    labels = [f"intent_number_{i:02d}_with_a_long_name" for i in range(77)]
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 5, size=(77, 77)) + np.eye(77, dtype=int) * 30
    assert_png(confusion_matrix_png(labels, matrix.tolist(), tmp_path / "cm.png"))
    per_label = {label: {"precision": 0.5, "recall": 0.5, "f1": float(f1), "support": 40}
                 for label, f1 in zip(labels, rng.random(77))}
    assert_png(per_label_f1_png(per_label, tmp_path / "f1.png"))
    assert plt.get_fignums() == []


def test_per_label_f1_accepts_plain_scores(tmp_path: Path) -> None:
    assert_png(per_label_f1_png({"b": 0.2, "a": 0.9, "c": 0.0}, tmp_path / "f1.png"))


def test_loss_curve(tmp_path: Path) -> None:
    train = [(i, 2.0 / (i + 1)) for i in range(0, 100, 5)]
    validation = [(25, 0.5), (50, 0.4), (75, 0.38), (100, 0.37)]
    assert_png(loss_curve_png(train, validation, tmp_path / "loss.png"))
    assert_png(loss_curve_png(train, [], tmp_path / "train_only.png"))


def test_bad_input_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        confusion_matrix_png(["a", "b"], [[1, 2, 3], [4, 5, 6]], tmp_path / "x.png")
    with pytest.raises(ValueError, match="empty"):
        per_label_f1_png({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="empty"):
        loss_curve_png([], [], tmp_path / "x.png")
    assert plt.get_fignums() == []
