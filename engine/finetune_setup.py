"""Before training: the data set (validated, split) and the base model with its tokenizer."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.data import (
    DialogueSet,
    LabeledSet,
    ValidationReport,
    check_labels,
    load_classification,
    load_dialogue,
    stratified_split,
    validate_classification,
    validate_dialogue,
)
from engine.errors import EngineError, ModelLoadError
from engine.finetune_params import FinetuneParams
from engine.registry import ModelSpec
from engine.settings import Settings
from engine.training_data import Examples, classification_examples, dialogue_examples

log = logging.getLogger(__name__)


@dataclass
class Splits:
    """Validated training and held-out rows (torch-free)."""

    train: LabeledSet | DialogueSet
    validation: LabeledSet | DialogueSet | None
    report: ValidationReport
    labels: list[str] | None = None


@dataclass
class PreparedData:
    """Tokenized examples ready for the Trainer, and the held-out rows they came from."""

    train: Examples
    validation: Examples
    labels: list[str] | None
    held_out: LabeledSet | DialogueSet | None
    report: ValidationReport
    extra: dict[str, Any] = field(default_factory=dict)


def load_splits(params: FinetuneParams) -> Splits:
    """Load and validate the training file; split off validation rows unless `eval_data` is given.

    A file that can't be used raises `DataError` carrying the validation report.
    """
    if params.task == "classify":
        dataset = load_classification(Path(params.data), text_column=params.text_column,
                                      label_column=params.label_column)
        report = validate_classification(dataset, max_tokens_hint=params.max_length)
    else:
        dataset = load_dialogue(Path(params.data))
        report = validate_dialogue(dataset, max_tokens_hint=params.max_length)
    report.raise_if_bad()
    dataset = dataset.without_rows(report.dropped_rows)
    if params.eval_data:
        validation = (load_classification(Path(params.eval_data), text_column=params.text_column,
                                          label_column=params.label_column)
                      if params.task == "classify" else load_dialogue(Path(params.eval_data)))
        train = dataset
    else:
        train, validation = stratified_split(
            dataset, validation_fraction=params.validation_fraction, seed=params.seed)
    labels = None
    if params.task == "classify":
        labels = train.label_names
        check_labels(validation.label_names, labels)
    return Splits(train, validation if len(validation) else None, report, labels)


def tokenize_splits(splits: Splits, tokenizer, params: FinetuneParams) -> PreparedData:
    if params.task == "classify":
        label_ids = {label: i for i, label in enumerate(splits.labels or [])}

        def encode(ds):
            return classification_examples(tokenizer, ds.texts, ds.labels, label_ids, params.max_length)
    else:
        def encode(ds):
            return dialogue_examples(tokenizer, ds.conversations, params.max_length)
    train = encode(splits.train)
    if not train:
        raise EngineError(f"no training example fits in max_length={params.max_length} tokens")
    validation = encode(splits.validation) if splits.validation is not None else Examples()
    return PreparedData(train, validation, splits.labels, splits.validation, splits.report)


def load_base_model(spec: ModelSpec, params: FinetuneParams, *, settings: Settings,
                    labels: list[str] | None):
    """A fresh, trainable copy of the base model (never the shared inference cache)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    folder = _weights_folder(spec, settings)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        if params.task == "classify":
            assert labels is not None
            model = AutoModelForSequenceClassification.from_pretrained(
                folder, num_labels=len(labels), id2label=dict(enumerate(labels)),
                label2id={label: i for i, label in enumerate(labels)},
                ignore_mismatched_sizes=spec.task == "classify")
        else:
            if spec.task not in ("chat",) and spec.builtin:
                raise EngineError(f"{spec.name!r} is not a causal language model; use base=smollm2")
            model = AutoModelForCausalLM.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"could not load base model {spec.name!r}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _weights_folder(spec: ModelSpec, settings: Settings) -> str:
    """A from_pretrained-able folder: GGUF built-ins are converted once to a safetensors cache."""
    if spec.gguf_file:
        from engine.causal_lm import materialize

        return str(materialize(spec, cache_dir=settings.cache_dir))
    if (Path(spec.path) / "adapter_config.json").exists():
        raise EngineError(f"{spec.name!r} is an adapter; fine-tune its base model instead "
                          "(or merge it first with --merge)")
    return spec.path
