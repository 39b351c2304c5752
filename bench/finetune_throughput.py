"""Training samples/s and held-out accuracy of engine.finetune against two Trainer+PEFT recipes,
measured in the same run on the same Banking77 subset, LoRA config and epochs.

    .venv/bin/python bench/finetune_throughput.py [--rows 2000] [--epochs 3] [--test 1000]

(a) the textbook recipe: every text padded to 128 tokens, Trainer defaults;
(b) Trainer with DataCollatorWithPadding and length grouping;
(c) engine.finetune with the same LoRA config, lr, epochs and evaluation schedule (the test rows
    at every epoch, no checkpoints);
(d) engine.finetune with its default settings (learning rates, epochs, schedule, a validation
    split of the training rows, checkpoints and early stopping): its wall time, from the call to
    the registered model, is to be compared with (b)'s `train()` alone.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "banking77"
LORA = dict(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=["query", "key", "value", "dense"])
MAX_LENGTH, BATCH, LR = 128, 32, 1e-3


def read(name: str) -> tuple[list[str], list[str]]:
    with open(DATA / name, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["category"].strip() for r in rows]


def stratified_subset(texts, labels, n, seed=0):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))[:n]
    return [texts[i] for i in order], [labels[i] for i in order]


def trainer_recipe(train, test, labels, epochs, *, padded: bool, out: Path) -> dict:
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              Trainer, TrainingArguments)

    from engine.registry import ModelRegistry

    base = ModelRegistry(out / "none").resolve("minilm").path
    tok = AutoTokenizer.from_pretrained(base)
    ids = {l: i for i, l in enumerate(labels)}
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=len(labels))
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, **LORA))

    def encode(texts, ys):
        enc = tok(texts, truncation=True, max_length=MAX_LENGTH,
                  padding="max_length" if padded else False)
        return [{"input_ids": a, "attention_mask": m, "labels": ids[y]}
                for a, m, y in zip(enc["input_ids"], enc["attention_mask"], ys)]

    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=BATCH, per_device_eval_batch_size=64,
        learning_rate=LR, num_train_epochs=epochs, eval_strategy="epoch", save_strategy="no",
        report_to=[], disable_tqdm=True, use_cpu=True, logging_steps=50,
        **({} if padded else {"train_sampling_strategy": "group_by_length"}))
    trainer = Trainer(model=model, args=args, train_dataset=encode(*train),
                      eval_dataset=encode(*test),
                      data_collator=None if padded else DataCollatorWithPadding(tok))
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started
    # transformers 5 length-groups evaluation batches too: compare with the labels in the order
    # the predictions came back in, not the test set's order
    predicted = trainer.predict(encode(*test))
    accuracy = float(np.mean(predicted.predictions.argmax(-1) == predicted.label_ids))
    return {"samples_per_second": output.metrics["train_samples_per_second"], "seconds": seconds,
            "accuracy": accuracy}


def engine_run(train, test, out: Path, *, eval_on_test: bool, **overrides) -> dict:
    """engine.finetune on `train`; with `eval_on_test` it evaluates on the test rows at each
    epoch as (a) and (b) do, else on its default validation split (10% of `train`)."""
    import engine
    from engine.classification import ClassifyParams
    from engine.finetune_params import FinetuneParams
    from engine.finetuning import finetune
    from engine.settings import get_settings

    for name, (texts, ys) in (("train", train), ("test", test)):
        with open(out / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(zip(texts, ys))
    settings = get_settings(lmops_home=out / "home")
    params = FinetuneParams(data=str(out / "train.csv"),
                            eval_data=str(out / "test.csv") if eval_on_test else None, **overrides)
    started = time.perf_counter()
    result = finetune(params, settings=settings, output_dir=out / params.name)
    seconds = time.perf_counter() - started
    predicted = engine.classify(test[0], ClassifyParams(model=params.name, quantize=False),
                                settings=settings)
    accuracy = float(np.mean([p.label == y for p, y in zip(predicted, test[1])]))
    return {"samples_per_second": result.samples_per_second, "seconds": seconds, "accuracy": accuracy,
            "train_seconds": result.train_seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--skip", default="", help="comma-separated runs to skip: a,b,c,d")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    train = stratified_subset(*read("train.csv"), args.rows)
    test = stratified_subset(*read("test.csv"), args.test)
    labels = sorted(set(train[1]))
    test = ([t for t, y in zip(*test) if y in labels], [y for y in test[1] if y in labels])
    print(f"Banking77: {len(train[0])} training rows, {len(test[0])} test rows, {len(labels)} labels, "
          f"{args.epochs} epochs, LoRA r=16 q/k/v/dense, lr {LR}, batch {BATCH}, "
          f"torch {torch.get_num_threads()} threads")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "a" not in skip:
            results["(a) padded to 128, Trainer defaults"] = trainer_recipe(
                train, test, labels, args.epochs, padded=True, out=tmp / "a")
        results["(b) dynamic padding + group_by_length"] = trainer_recipe(
            train, test, labels, args.epochs, padded=False, out=tmp / "b")
        (tmp / "c").mkdir()
        if "c" not in skip:
            results["(c) engine.finetune, same config"] = engine_run(
                train, test, tmp / "c", eval_on_test=True, name="same", epochs=args.epochs, lr=LR,
                head_lr=LR, batch_size=BATCH, lora_r=16, lora_alpha=32, lora_dropout=0.05, warmup_ratio=0.0,
                early_stopping_patience=None, save_checkpoints=False)
        if "d" not in skip:
            (tmp / "d").mkdir()
            results["(d) engine.finetune, defaults"] = engine_run(
                train, test, tmp / "d", eval_on_test=False, name="defaults")
    b = results["(b) dynamic padding + group_by_length"]["samples_per_second"]
    print(f"{'run':42s} {'samples/s':>10s} {'vs (b)':>7s} {'wall s':>7s} {'test acc':>8s}")
    for name, r in results.items():
        print(f"{name:42s} {r['samples_per_second']:10.1f} {r['samples_per_second'] / b:6.2f}x "
              f"{r['seconds']:7.1f} {r['accuracy']:8.3f}")


if __name__ == "__main__":
    main()
