"""Parameters of a classification (torch-free, so the bot and the queue can validate them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.devices import DEVICES, check_device


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

    model: str | None = field(default=None, metadata={
        "help": "classifier or encoder to use: a model name, folder or hub id (default: the "
                "promoted classifier, else the built-in sentiment; minilm when labels are given)"})
    labels: tuple[str, ...] | None = field(default=None, metadata={
        "help": "two or more label names: zero-shot classification by embedding similarity, or, "
                "with a fine-tuned classifier, only these of its labels"})
    device: str = field(default="auto", metadata={
        "help": "where to run: auto (CUDA if available, else CPU), cpu, cuda or cuda:N",
        "choices": DEVICES})
    batch_size: int = field(default=64, metadata={
        "help": "how many texts go through the model at once"})
    # int8 on the CPU: True always, False never, None where the model's own check allows it
    # (engine.int8_check)
    quantize: bool | None = field(default=None, metadata={
        "help": "int8 on the CPU: true always (faster), false never (exact fp32), unset where "
                "the model's own int8 check passed"})

    def __post_init__(self) -> None:
        if self.labels is not None:
            object.__setattr__(self, "labels", clean_labels(self.labels))
        check_device(self.device)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {self.batch_size}")
