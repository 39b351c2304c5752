"""Texts per second of engine.classify against HuggingFace's pipeline, in the same run.

    .venv/bin/python bench/classify_throughput.py [--n 2000]

Model: the built-in `minilm` encoder with a seeded random 77-label head (saved to a temporary
folder, so both sides load the very same weights). Texts: the first N Banking77 test texts.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

import engine
from engine.classification import ClassifyParams
from engine.registry import ModelRegistry

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "banking77"


def random_head_model(folder: Path) -> Path:
    labels = [f"intent_{i}" for i in range(77)]
    torch.manual_seed(0)
    base = ModelRegistry(folder / "none").resolve("minilm").path
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=77, id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    model.save_pretrained(folder / "model")
    AutoTokenizer.from_pretrained(base).save_pretrained(folder / "model")
    return folder / "model"


def rate(fn, n: int) -> tuple[float, object]:
    fn(TEXTS[:64])  # warm-up
    start = time.perf_counter()
    out = fn(TEXTS[:n])
    return n / (time.perf_counter() - start), out


def main() -> None:
    global TEXTS
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    with open(DATA / "test.csv", newline="", encoding="utf-8") as f:
        TEXTS = [row["text"] for row in csv.DictReader(f)][: args.n]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {len(TEXTS)} Banking77 texts")
    with tempfile.TemporaryDirectory() as tmp:
        path = random_head_model(Path(tmp))
        pipe = pipeline("text-classification", model=str(path), device="cpu")
        single, _ = rate(lambda ts: [pipe(t) for t in ts], len(TEXTS))
        batched, _ = rate(lambda ts: pipe(ts, batch_size=32), len(TEXTS))
        fp32, ref = rate(lambda ts: engine.classify(ts, ClassifyParams(model=str(path), quantize=False)), len(TEXTS))
        int8, fast = rate(lambda ts: engine.classify(ts, ClassifyParams(model=str(path), quantize=True)), len(TEXTS))
    same = sum(a.label == b.label for a, b in zip(ref, fast)) / len(ref)
    print(f"{'pipeline, one text per call':40s} {single:8.1f} texts/s")
    print(f"{'pipeline, batch_size=32':40s} {batched:8.1f} texts/s")
    for name, value in (("engine.classify fp32", fp32), ("engine.classify int8 (quantize=True)", int8)):
        print(f"{name:40s} {value:8.1f} texts/s   {value / single:5.1f}x single  {value / batched:5.1f}x batch32")
    print(f"int8 labels equal to fp32 on this random head: {same:.1%}")


if __name__ == "__main__":
    main()
