"""Fine-tuning with transformers' Trainer and peft: classification on encoders, dialogue on
causal LMs. The worker calls `finetune` as the CLI does: progress goes to a callback, a
cancellation check runs between steps, and `resume` continues from the last checkpoint."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.devices import resolve_device
from engine.errors import CancelledError, EngineError
from engine.fast_dropout import use_fast_dropout
from engine.finetune_params import MIN_AUTO_STEPS, FinetuneParams
from engine.finetune_setup import PreparedData, load_base_model, load_splits, tokenize_splits
from engine.params import resolve_params
from engine.peft_methods import build_peft_config, supports_past_key_values
from engine.registry import ModelRegistry, ModelSpec, validate_model_name
from engine.settings import Settings, get_settings
from engine.training_callbacks import (
    AdaLoraAllocator,
    CancelCheck,
    DropoutRngCheckpoint,
    EarlyStop,
    ProgressFn,
    ProgressReporter,
)

log = logging.getLogger(__name__)

__all__ = ["FinetuneParams", "FinetuneResult", "finetune"]


@dataclass(frozen=True)
class FinetuneResult:
    name: str
    path: str
    task: str
    base: str
    method: str
    metrics: dict[str, Any]
    train_seconds: float
    samples_per_second: float
    stopped_early: dict[str, Any] | None = None  # {"step", "total_steps", "reason"}

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def finetune(
    params: FinetuneParams | None = None,
    *,
    settings: Settings | None = None,
    registry: ModelRegistry | None = None,
    progress: ProgressFn | None = None,
    should_cancel: Callable[[], bool] | None = None,
    output_dir: Path | None = None,
    **fields: Any,
) -> FinetuneResult:
    """Train `params.base` on `params.data`, evaluate on held-out rows, save and register it.

    `params` is a FinetuneParams, or give its fields as keywords instead:
    `finetune(data="tickets.csv", name="tickets-v1", epochs=2)`.
    """
    params = resolve_params(FinetuneParams, params, fields, caller="finetune")
    settings = settings or get_settings()
    registry = registry or ModelRegistry(settings.models_dir)
    name = validate_model_name(params.name or _default_name(params))
    if not params.resume and name in registry.names():
        raise EngineError(f"a model named {name!r} exists; pick another name= or resume it")
    out_dir = Path(output_dir or settings.artifacts / "models" / name)
    device = resolve_device(params.device)
    base_spec = registry.resolve(params.base_model)
    splits = load_splits(params)
    torch.manual_seed(params.seed)
    model, tokenizer = load_base_model(base_spec, params, settings=settings, labels=splits.labels)
    data = tokenize_splits(splits, tokenizer, params)

    batch_size, accumulation = params.batch_size, params.grad_accum
    for attempt in range(2):
        try:
            trainer, cancel = _trainer(params, model, tokenizer, data, out_dir, device,
                                       batch_size, accumulation, progress, should_cancel)
            started = time.perf_counter()
            checkpoint = latest_checkpoint(out_dir / "checkpoints") if params.resume else None
            train_output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
            break
        except torch.cuda.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            if attempt == 1 or batch_size == 1:
                raise EngineError(
                    f"out of GPU memory at batch size {batch_size}; try batch_size="
                    f"{max(batch_size // 4, 1)} with grad_accum={accumulation * 4}, a shorter "
                    "max_length, gradient_checkpointing=true, or a smaller base model") from exc
            batch_size, accumulation = batch_size // 2, accumulation * 2
            log.warning("CUDA out of memory: retrying with batch %d x %d accumulation",
                        batch_size, accumulation)
            model, tokenizer = load_base_model(base_spec, params, settings=settings, labels=splits.labels)
    seconds = time.perf_counter() - started
    if cancel is not None and cancel.cancelled:
        raise CancelledError(f"fine-tune {name!r} cancelled at step {trainer.state.global_step}; "
                             "its checkpoint is kept, resume it to continue")
    from engine.finetune_outputs import evaluate_held_out, save_model, staging_dir

    staging = staging_dir(out_dir)
    metrics = evaluate_held_out(trainer, params, data, staging)
    model_dir = save_model(trainer, tokenizer, params, data, metrics, out_dir, staging)
    spec = ModelSpec(name=name, task=params.task, path=str(model_dir), base=params.base_model,
                     method=params.method, labels=data.labels, metrics=metrics)
    if params.task == "classify" and data.held_out is not None:
        metrics["int8"] = _int8_check(spec, data, registry)
    spec = registry.register(spec)
    return FinetuneResult(
        name=spec.name, path=spec.path, task=params.task, base=params.base_model,
        method=params.method, metrics=metrics, train_seconds=round(seconds, 2),
        samples_per_second=round(float(train_output.metrics.get("train_samples_per_second", 0.0)), 2),
        stopped_early=next((c.stopped for c in trainer.callback_handler.callbacks
                            if isinstance(c, EarlyStop)), None),
    )


def _int8_check(spec: ModelSpec, data: PreparedData, registry: ModelRegistry) -> dict[str, Any]:
    """int8 against fp32 on the held-out rows (engine.int8_check), added to metrics.json. A
    check that fails leaves the model fp32 by default; the fine-tune itself stands."""
    from engine.finetune_outputs import update_metrics_file
    from engine.int8_check import check_int8

    held_out = data.held_out
    try:
        check = check_int8(spec, held_out.texts, held_out.labels, registry)
    except Exception as exc:  # noqa: BLE001
        log.warning("the int8 check of %s failed: %s", spec.name, exc)
        check = {"default": False, "error": f"{type(exc).__name__}: {exc}"}
    update_metrics_file(Path(spec.path), {"int8": check})
    if "n" in check:
        log.info("int8 on %d held-out rows: %.1f%% of fp32's labels, accuracy %+.2f points%s",
                 check["n"], 100 * check["agreement"],
                 100 * (check["accuracy_int8"] - check["accuracy_fp32"]),
                 ": int8 by default" if check["default"] else "")
    return check


def _default_name(params: FinetuneParams) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{Path(params.data).stem[:24]}-{params.method}-{stamp}".replace(" ", "-")


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint in `folder`; incomplete ones (a process killed while
    writing, before the Trainer's final `trainer_state.json`) are deleted."""
    if not folder.is_dir():
        return None
    found: list[tuple[int, Path]] = []
    for path in folder.glob("checkpoint-*"):
        step = path.name.removeprefix("checkpoint-")
        if not step.isdigit():
            continue
        if (path / "trainer_state.json").exists():
            found.append((int(step), path))
        else:
            log.warning("removing incomplete checkpoint %s", path)
            shutil.rmtree(path, ignore_errors=True)
    return max(found)[1] if found else None


def _trainer(params, model, tokenizer, data: PreparedData, out_dir: Path, device, batch_size: int,
             accumulation: int, progress, should_cancel):
    from peft import get_peft_model
    from transformers import PrinterCallback, Trainer, TrainingArguments

    from engine.training_data import collator_for

    steps_per_epoch = max(len(data.train) // (batch_size * accumulation), 1)
    epochs = params.epochs_for(steps_per_epoch)
    total_steps = params.max_steps or int(np.ceil(steps_per_epoch * epochs))
    peft_config = build_peft_config(
        params.method, task=params.task, model_type=model.config.model_type, r=params.lora_r,
        alpha=params.lora_alpha, dropout=params.lora_dropout,
        target_modules=list(params.target_modules) if params.target_modules else None,
        total_steps=total_steps, supports_past_key_values=supports_past_key_values(model))
    if device.type == "cpu" and getattr(model.config, "attention_probs_dropout_prob", 0) > 0:
        # SDPA's CPU kernel with dropout is slower than the eager attention (a few % of a step)
        model.set_attn_implementation("eager")
    if peft_config is not None:
        model = get_peft_model(model, peft_config)
    dropout_rng = np.random.default_rng(params.seed)
    fast_dropout = device.type == "cpu" and use_fast_dropout(model, dropout_rng) > 0
    if params.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    interval = params.eval_steps
    strategy = "steps" if interval else "epoch"
    early = params.early_stopping_patience is not None and data.validation and params.save_checkpoints
    best_metric = "selection" if params.task == "classify" else "loss"  # see selection_score
    args = TrainingArguments(
        output_dir=str(out_dir / "checkpoints"),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size * 2,
        gradient_accumulation_steps=accumulation,
        learning_rate=params.learning_rate,
        lr_scheduler_type=params.schedule,
        warmup_steps=int(params.warmup_ratio * total_steps),
        weight_decay=params.weight_decay,
        num_train_epochs=epochs,
        max_steps=params.max_steps or -1,
        eval_strategy=strategy if data.validation else "no",
        eval_steps=interval,
        save_strategy=strategy if params.save_checkpoints else "no",
        save_steps=params.save_steps or interval,
        save_total_limit=2,
        load_best_model_at_end=bool(early),
        metric_for_best_model=best_metric if early else None,
        greater_is_better=(best_metric != "loss") if early else None,
        logging_steps=max(min(steps_per_epoch // 4, 50), 1),
        train_sampling_strategy="group_by_length",
        bf16=device.type == "cuda" and torch.cuda.is_bf16_supported(),
        use_cpu=device.type == "cpu",
        seed=params.seed,
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        save_only_model=False,
    )
    callbacks: list[Any] = []
    early_stop = EarlyStop(params.early_stopping_patience,
                           min_steps=min(MIN_AUTO_STEPS, total_steps)) if early else None
    if progress is not None:
        callbacks.append(ProgressReporter(progress, early_stop))
    cancel = CancelCheck(should_cancel) if should_cancel is not None else None
    if cancel is not None:
        callbacks.append(cancel)
    if params.method == "adalora":
        callbacks.append(AdaLoraAllocator())
    if fast_dropout:
        callbacks.append(DropoutRngCheckpoint(dropout_rng))
    if early_stop is not None:
        callbacks.append(early_stop)
    trainer = Trainer(
        model=model, args=args, train_dataset=data.train, eval_dataset=data.validation or None,
        data_collator=collator_for(params.task, tokenizer), processing_class=tokenizer,
        compute_metrics=_classification_scores if params.task == "classify" else None,
        optimizers=(_optimizer(model, params), None), callbacks=callbacks,
    )
    # Trainer prints its logs to stdout when its tqdm bar is off; stdout is for results (--json)
    trainer.remove_callback(PrinterCallback)
    return trainer, cancel


def _optimizer(model, params: FinetuneParams) -> torch.optim.Optimizer:
    """AdamW with two learning rates: the new classification head, and everything else."""
    head, body, no_decay = [], [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        if any(key in name for key in ("classifier", "score")):
            head.append(parameter)
        elif parameter.ndim < 2:
            no_decay.append(parameter)
        else:
            body.append(parameter)
    groups = [
        {"params": body, "lr": params.learning_rate, "weight_decay": params.weight_decay},
        {"params": no_decay, "lr": params.learning_rate, "weight_decay": 0.0},
        {"params": head, "lr": params.head_learning_rate, "weight_decay": params.weight_decay},
    ]
    # fused: one kernel for every parameter, instead of a dozen small ops per LoRA matrix
    return torch.optim.AdamW([g for g in groups if g["params"]], fused=_fused_adamw(model))


def _fused_adamw(model) -> bool:
    devices = {p.device.type for p in model.parameters() if p.requires_grad}
    return devices <= {"cpu", "cuda"}


def _classification_scores(eval_prediction) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    logits, labels = eval_prediction.predictions, eval_prediction.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    logits = np.asarray(logits, dtype=np.float64)
    predicted = logits.argmax(axis=-1)
    macro_f1 = float(f1_score(labels, predicted, average="macro", zero_division=0))
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    nll = float(-log_probs[np.arange(len(labels)), labels].mean())
    return {"accuracy": float(accuracy_score(labels, predicted)), "macro_f1": macro_f1,
            "selection": selection_score(macro_f1, nll)}


def selection_score(macro_f1: float, loss: float) -> float:
    """What picks the checkpoint a classification fine-tune keeps: macro-F1 to 4 decimals,
    ties broken by the lower validation loss (the loss term is under 1e-4, so it never
    outweighs an F1 difference). On small data F1 ties at 100% long before the model is sure
    of its labels; the loss alone is too noisy on a few dozen rows."""
    return round(macro_f1, 4) - 1e-5 * min(loss, 9.99)
