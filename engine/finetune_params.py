"""The parameters of a fine-tune, validated on construction. Torch-free: the slash-command
parser and the queue build and check these without loading any model."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.devices import DEVICES, check_device
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
# Without epochs=: 4 passes, or more on a small data set, where 4 passes are a few optimizer steps
# (120 rows at batch 32 are 16 steps): enough for at least MIN_AUTO_STEPS, at most MAX_AUTO_EPOCHS.
# Early stopping on the validation loss ends a run that has stopped improving.
DEFAULT_EPOCHS, MIN_AUTO_STEPS, MAX_AUTO_EPOCHS = 4.0, 50, 20.0


@dataclass(frozen=True)
class FinetuneParams:
    """One fine-tune: data, base model, PEFT method and the training schedule."""

    data: str = field(metadata={
        "help": "training file: CSV, TSV, JSONL or JSON (text and label columns to classify, "
                "conversations to chat)"})
    eval_data: str | None = field(default=None, metadata={
        "help": "held-out file in the same format (default: a stratified split of the "
                "training data)"})
    task: str = field(default="classify", metadata={
        "help": "what to train: a text classifier or a chat model", "choices": TASKS})
    base: str | None = field(default=None, metadata={
        "help": "model to start from (default: minilm to classify, smollm2 to chat)"})
    method: str = field(default="lora", metadata={
        "help": "how to train: a LoRA, AdaLoRA, (IA)3 or prefix adapter, or full (every weight)",
        "choices": METHODS})
    epochs: float | None = field(default=None, metadata={
        "help": f"passes over the training data (default: {DEFAULT_EPOCHS:g}, more on a small data "
                f"set so that training takes at least {MIN_AUTO_STEPS} steps, at most "
                f"{MAX_AUTO_EPOCHS:g} passes)"})
    lr: float | None = field(default=None, metadata={
        "help": "learning rate (default: depends on the task and method)"})
    head_lr: float | None = field(default=None, metadata={
        "help": "learning rate of a new classification head (default: the larger of lr and "
                "0.01; lr itself for method full)"})
    batch_size: int = field(default=32, metadata={
        "help": "training examples per step on the device"})
    grad_accum: int = field(default=1, metadata={
        "help": "steps whose gradients add up before each weight update (effective batch: "
                "batch_size times this)"})
    warmup_ratio: float = field(default=0.1, metadata={
        "help": "share of the steps over which the learning rate ramps up from zero"})
    schedule: str = field(default="linear", metadata={
        "help": "how the learning rate changes after warm-up", "choices": SCHEDULES})
    weight_decay: float = field(default=0.01, metadata={
        "help": "AdamW weight decay, which pulls weights towards zero to curb overfitting"})
    max_length: int = field(default=128, metadata={
        "help": "the most tokens per example; longer ones are cut"})
    lora_r: int = field(default=16, metadata={
        "help": "rank of the LoRA and AdaLoRA adapter matrices (higher: more capacity, "
                "more weights)"})
    lora_alpha: int = field(default=32, metadata={
        "help": "scale of the LoRA update (it is multiplied by lora_alpha / lora_r)"})
    lora_dropout: float = field(default=0.05, metadata={
        "help": "dropout on the LoRA adapters' input during training"})
    target_modules: tuple[str, ...] | None = field(default=None, metadata={
        "help": "names of the layers to adapt (default: chosen per model architecture)"})
    gradient_checkpointing: bool = field(default=False, metadata={
        "help": "recompute activations in the backward pass: less GPU memory, slower steps"})
    early_stopping_patience: int | None = field(default=2, metadata={
        "help": "stop after this many evaluations without improvement on the held-out rows "
                "(unset: never stop early)"})
    eval_steps: int | None = field(default=None, metadata={
        "help": "evaluate every this many steps (default: after every epoch)"})
    save_steps: int | None = field(default=None, metadata={
        "help": "save a checkpoint every this many steps (default: at each evaluation)"})
    save_checkpoints: bool = field(default=True, metadata={
        "help": "save checkpoints during training, so the run can be resumed and the best "
                "one kept"})
    max_steps: int | None = field(default=None, metadata={
        "help": "stop after this many optimizer steps, whatever epochs says"})
    validation_fraction: float = field(default=0.1, metadata={
        "help": "share of the training rows held out for evaluation when no eval_data is given"})
    seed: int = field(default=0, metadata={
        "help": "random seed for the split, the initial weights and the data order"})
    name: str | None = field(default=None, metadata={
        "help": "name of the new model (default: from the data file, the method and the time)"})
    resume: bool = field(default=False, metadata={
        "help": "continue the fine-tune of this name from its last checkpoint"})
    merge: bool = field(default=False, metadata={
        "help": "also save a copy with the adapter merged into the base weights, for deployment"})
    device: str = field(default="auto", metadata={
        "help": "where to train: auto (CUDA if available, else CPU), cpu, cuda or cuda:N",
        "choices": DEVICES})
    text_column: str | None = field(default=None, metadata={
        "help": "column holding the texts (default: detected from the column names)"})
    label_column: str | None = field(default=None, metadata={
        "help": "column holding the labels (default: detected from the column names)"})

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("a fine-tune needs training data (data=...)")
        _one_of("task", self.task, TASKS)
        _one_of("method", self.method, METHODS)
        _one_of("schedule", self.schedule, SCHEDULES)
        check_device(self.device)
        if self.epochs is not None and self.epochs <= 0:
            raise ValueError(f"epochs must be positive, not {self.epochs}")
        for name in ("batch_size", "grad_accum", "max_length", "lora_r", "lora_alpha"):
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

    def epochs_for(self, steps_per_epoch: int) -> float:
        """The passes to train: `epochs`, or without it 4, raised on a small data set to reach
        `MIN_AUTO_STEPS` optimizer steps (at most `MAX_AUTO_EPOCHS`)."""
        if self.epochs is not None:
            return self.epochs
        wanted = math.ceil(MIN_AUTO_STEPS / max(steps_per_epoch, 1))
        return float(min(max(DEFAULT_EPOCHS, wanted), MAX_AUTO_EPOCHS))

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
