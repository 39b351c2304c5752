"""Parameters of a classification (torch-free, so the bot and the queue can validate them)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.devices import DEVICES


@dataclass(frozen=True)
class ClassifyParams:
    """How to classify: which model, optional zero-shot labels, where and how fast."""

    model: str | None = None
    labels: tuple[str, ...] | None = None
    device: str = "auto"
    batch_size: int = 64
    quantize: bool = False

    def __post_init__(self) -> None:
        if self.labels is not None:
            labels = tuple(l.strip() for l in self.labels)
            if any(not l for l in labels):
                raise ValueError(f"labels {list(self.labels)!r} contain an empty label")
            if len(set(labels)) != len(labels):
                raise ValueError(f"labels {list(labels)!r} repeat a label")
            if len(labels) < 2:
                raise ValueError(f"labels {list(labels)!r}: give at least two labels")
            object.__setattr__(self, "labels", labels)
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise ValueError(f"device {self.device!r} is not one of {', '.join(DEVICES)}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {self.batch_size}")
