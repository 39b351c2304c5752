"""Parameters of an evaluation (torch- and numpy-free, so the bot and the queue can validate
them cheaply). `engine.evaluation` re-exports `EvalParams`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.classify_params import clean_labels
from engine.devices import DEVICES, check_device


@dataclass(frozen=True)
class EvalParams:
    """What to evaluate, on which data, and where the metrics and charts go.

    `labels` is the label set for zero-shot evaluation with an encoder (default: the data's own
    labels), or a subset of a fine-tuned classifier's labels. `out_dir` defaults to
    `<artifacts>/eval/<model>-<timestamp>`. `max_generations` and `max_new_tokens` bound the
    greedy replies scored with ROUGE-L for chat models (0 generations: loss only).
    """

    model: str = field(metadata={
        "help": "the model to evaluate: a model name, folder or hub id"})
    data: Path | str = field(metadata={
        "help": "the labeled data: a classification file, or a dialogue file for chat models"})
    labels: tuple[str, ...] | None = field(default=None, metadata={
        "help": "label names for zero-shot evaluation of an encoder (default: the data's "
                "labels), or a subset of a classifier's labels"})
    device: str = field(default="auto", metadata={
        "help": "where to run: auto (CUDA if available, else CPU), cpu, cuda or cuda:N",
        "choices": DEVICES})
    out_dir: Path | None = field(default=None, metadata={
        "help": "folder for the metrics and charts (default: <artifacts>/eval/<model>-<time>)"})
    batch_size: int = field(default=64, metadata={
        "help": "how many examples go through the model at once"})
    text_column: str | None = field(default=None, metadata={
        "help": "the data's text column (default: guessed from the header)"})
    label_column: str | None = field(default=None, metadata={
        "help": "the data's label column (default: guessed from the header)"})
    max_generations: int = field(default=32, metadata={
        "help": "chat models: how many conversations get a greedy reply scored with ROUGE-L "
                "(0: loss only)"})
    max_new_tokens: int = field(default=64, metadata={
        "help": "chat models: the longest generated reply, in tokens"})

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
