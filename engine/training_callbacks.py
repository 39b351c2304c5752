"""Trainer callbacks: progress reports (for the CLI's bar and the worker's Slack updates),
cancellation between steps, AdaLoRA's rank allocation, and the dropout generator's state in
checkpoints."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from transformers import EarlyStoppingCallback, TrainerCallback


@dataclass(frozen=True)
class Progress:
    """One progress report of a fine-tune."""

    step: int
    total_steps: int
    epoch: float
    loss: float | None = None
    validation: dict[str, float] = field(default_factory=dict)
    eta_seconds: float | None = None
    stage: str = "train"
    epochs: float | None = None  # the passes planned
    stopped_early: dict[str, Any] | None = None  # {"step", "total_steps", "reason"}

    @property
    def fraction(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    @property
    def stop_note(self) -> str | None:
        """`stopped early at step 12 of 16: validation loss stopped improving`, or None."""
        stop = self.stopped_early
        return stopped_note(stop) if stop else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def stopped_note(stop: dict[str, Any]) -> str:
    return f"stopped early at step {stop['step']} of {stop['total_steps']}: {stop['reason']}"


class EarlyStop(EarlyStoppingCallback):
    """transformers' early stopping on the metric that picks the kept checkpoint, that counts
    only evaluations after `min_steps` (a few dozen validation rows are too noisy to end a run
    in its first epochs), and remembers when and why it stopped (for the progress bar, the
    status message and `lmops jobs`)."""

    def __init__(self, patience: int, min_steps: int = 0) -> None:
        super().__init__(early_stopping_patience=patience)
        self.patience, self.min_steps = patience, min_steps
        self.stopped: dict[str, Any] | None = None

    def on_evaluate(self, args, state, control, metrics, **kwargs):
        if state.global_step < self.min_steps:
            return
        super().on_evaluate(args, state, control, metrics, **kwargs)
        if control.should_training_stop and self.stopped is None \
                and self.early_stopping_patience_counter >= self.patience:
            evaluations = "evaluation" if self.patience == 1 else f"{self.patience} evaluations"
            what = "validation loss" if args.metric_for_best_model in ("loss", "eval_loss") \
                else "validation F1 and loss"
            self.stopped = {"step": state.global_step, "total_steps": state.max_steps,
                            "reason": f"{what} stopped improving for {evaluations}"}


ProgressFn = Callable[[Progress], None]


class ProgressReporter(TrainerCallback):
    """Calls `report(Progress)` after every optimiser step and every evaluation."""

    def __init__(self, report: ProgressFn, early_stop: EarlyStop | None = None) -> None:
        self.report = report
        self.early_stop = early_stop
        self.started = time.monotonic()
        self.first_step: int | None = None
        self.loss: float | None = None
        self.validation: dict[str, float] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()
        self.first_step = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.loss = float(logs["loss"])
        evals = {k.removeprefix("eval_"): float(v) for k, v in logs.items()
                 if k.startswith("eval_") and isinstance(v, (int, float))
                 and not k.endswith(("_runtime", "_per_second"))}
        if evals:
            self.validation = evals
            self._emit(state, stage="evaluate")

    def on_step_end(self, args, state, control, **kwargs):
        self._emit(state, epochs=args.num_train_epochs)

    def on_train_end(self, args, state, control, **kwargs):
        stopped = self.early_stop.stopped if self.early_stop is not None else None
        if stopped is not None:
            self._emit(state, stage="stopped", epochs=args.num_train_epochs, stopped=stopped)

    def _emit(self, state, stage: str = "train", epochs: float | None = None,
              stopped: dict[str, Any] | None = None) -> None:
        done = state.global_step - (self.first_step or 0)
        left = state.max_steps - state.global_step
        eta = (time.monotonic() - self.started) / done * left if done > 0 and not stopped \
            else None
        self.report(Progress(step=state.global_step, total_steps=state.max_steps,
                             epoch=float(state.epoch or 0.0), loss=self.loss,
                             validation=dict(self.validation), eta_seconds=eta, stage=stage,
                             epochs=epochs, stopped_early=stopped))


class CancelCheck(TrainerCallback):
    """Stops training at the next step once `should_cancel()` says so; a checkpoint is saved."""

    def __init__(self, should_cancel: Callable[[], bool]) -> None:
        self.should_cancel = should_cancel
        self.cancelled = False

    def on_step_end(self, args, state, control, **kwargs):
        if self.should_cancel():
            self.cancelled = True
            control.should_training_stop = True
            control.should_save = True
        return control


class AdaLoraAllocator(TrainerCallback):
    """AdaLoRA's rank allocation, which the Trainer does not run by itself: after every
    optimizer step, while the gradients are still there, the budget is updated and the least
    important singular values are masked (peft's `update_and_allocate`)."""

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        if model is not None:
            model.base_model.update_and_allocate(state.global_step)
        return control


class DropoutRngCheckpoint(TrainerCallback):
    """Saves the state of `engine.fast_dropout`'s generator with every checkpoint and restores it
    when training resumes from one (the Trainer does this for torch's generators only)."""

    FILE = "dropout_rng.json"

    def __init__(self, rng: Any) -> None:
        self.rng = rng

    def _file(self, args, state) -> Path:
        return Path(args.output_dir) / f"checkpoint-{state.global_step}" / self.FILE

    def on_train_begin(self, args, state, control, **kwargs):
        saved = self._file(args, state)
        if state.global_step and saved.exists():  # resuming from that checkpoint
            self.rng.bit_generator.state = json.loads(saved.read_text())
        return control

    def on_save(self, args, state, control, **kwargs):
        folder = self._file(args, state).parent
        if folder.is_dir():
            (folder / self.FILE).write_text(json.dumps(self.rng.bit_generator.state))
        return control
