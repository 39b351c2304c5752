"""The parameters of a fine-tune, validated on construction. Torch-free: the slash-command
parser and the queue build and check these without loading any model."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from engine.devices import check_device
from engine.peft_methods import METHODS

TASKS = ("classify", "chat")
SCHEDULES = ("linear", "cosine", "constant_with_warmup")
DEFAULT_BASE = {"classify": "minilm", "chat": "smollm2"}
# Learning rates that work for each method (adapter weights); the fresh classification head
# learns faster than the adapters around a pretrained body.
DEFAULT_LR = {
    ("classify", "lora"): 2e-3, ("classify", "adalora"): 2e-3, ("classify", "ia3"): 1e-2,
    ("classify", "prefix"): 1e-2, ("classify", "full"): 1e-4,
    ("chat", "lora"): 5e-4, ("chat", "adalora"): 5e-4, ("chat", "ia3"): 5e-3,
    ("chat", "prefix"): 5e-3, ("chat", "full"): 3e-5,
}
DEFAULT_HEAD_LR = 1e-2


@dataclass(frozen=True)
class FinetuneParams:
    """One fine-tune: data, base model, PEFT method and the training schedule."""

    data: str
    eval_data: str | None = None
    task: str = "classify"
    base: str | None = None
    method: str = "lora"
    epochs: float = 4.0
    lr: float | None = None
    head_lr: float | None = None
    batch_size: int = 32
    grad_accum: int = 1
    warmup_ratio: float = 0.1
    schedule: str = "linear"
    weight_decay: float = 0.01
    max_length: int = 128
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] | None = None
    gradient_checkpointing: bool = False
    early_stopping_patience: int | None = 2
    eval_steps: int | None = None
    save_steps: int | None = None
    save_checkpoints: bool = True
    max_steps: int | None = None
    validation_fraction: float = 0.1
    seed: int = 0
    name: str | None = None
    resume: bool = False
    merge: bool = False
    device: str = "auto"
    text_column: str | None = None
    label_column: str | None = None

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("a fine-tune needs training data (data=...)")
        _one_of("task", self.task, TASKS)
        _one_of("method", self.method, METHODS)
        _one_of("schedule", self.schedule, SCHEDULES)
        check_device(self.device)
        for name in ("epochs", "batch_size", "grad_accum", "max_length", "lora_r", "lora_alpha"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
        for name in ("lr", "head_lr"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 1:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        for name in ("eval_steps", "save_steps", "max_steps", "early_stopping_patience"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, not {value}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), not {self.warmup_ratio}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout must be in [0, 1), not {self.lora_dropout}")
        if not 0 < self.validation_fraction < 0.5:
            raise ValueError(f"validation_fraction must be in (0, 0.5), not {self.validation_fraction}")
        if self.method == "prefix" and self.gradient_checkpointing:
            raise ValueError("prefix tuning can't be combined with gradient checkpointing "
                             "(peft's prefix key/values bypass it); drop one of the two")
        if not self.save_checkpoints and self.resume:
            raise ValueError("resume needs checkpoints; drop save_checkpoints=false")
        if self.target_modules is not None:
            object.__setattr__(self, "target_modules", tuple(self.target_modules))

    @property
    def base_model(self) -> str:
        return self.base or DEFAULT_BASE[self.task]

    @property
    def learning_rate(self) -> float:
        return self.lr or DEFAULT_LR[(self.task, self.method)]

    @property
    def head_learning_rate(self) -> float:
        if self.head_lr:
            return self.head_lr
        return self.learning_rate if self.method == "full" else max(DEFAULT_HEAD_LR, self.learning_rate)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(base=self.base_model, lr=self.learning_rate, head_lr=self.head_learning_rate)
        if data["target_modules"] is not None:
            data["target_modules"] = list(data["target_modules"])
        return data


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} {value!r} is not one of: {', '.join(allowed)}")
