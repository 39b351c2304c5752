"""Parameters of a classification (torch-free, so the bot and the queue can validate them)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.devices import check_device


def clean_labels(labels) -> tuple[str, ...]:
    """Label names stripped; raises ValueError for empty, repeated, or fewer than two labels."""
    cleaned = tuple(str(label).strip() for label in labels)
    if any(not label for label in cleaned):
        raise ValueError(f"labels {list(labels)!r} contain an empty label")
    if len(set(cleaned)) != len(cleaned):
        raise ValueError(f"labels {list(cleaned)!r} repeat a label")
    if len(cleaned) < 2:
        raise ValueError(f"labels {list(cleaned)!r}: give at least two labels")
    return cleaned


@dataclass(frozen=True)
class ClassifyParams:
    """How to classify: which model, optional zero-shot labels, where and how fast."""

    model: str | None = None
    labels: tuple[str, ...] | None = None
    device: str = "auto"
    batch_size: int = 64
    # int8 on the CPU: True always, False never, None where the model's own check allows it
    # (engine.int8_check)
    quantize: bool | None = None

    def __post_init__(self) -> None:
        if self.labels is not None:
            object.__setattr__(self, "labels", clean_labels(self.labels))
        check_device(self.device)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {self.batch_size}")
