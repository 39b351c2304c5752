"""int8 dynamic quantisation against fp32 on a fine-tuned classifier: the share of texts that get
the same label, the accuracy of both, and texts per second, measured in the same run.

    .venv/bin/python bench/int8_agreement.py --model banking77 \
        [--data ../shared/data/banking77/test.csv] [--batch-size 64]

int8 is worth making the default for a model only where at least 99.5% of the labels agree with
fp32 and the accuracy is within half a point (issue 3; `engine.int8_check`, the same rule every
classification fine-tune applies to its held-out rows); the last line says whether that holds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import engine
from engine.classify_params import ClassifyParams
from engine.data import load_classification
from engine.int8_check import int8_verdict
from engine.settings import get_settings
from lmops.wiring import local

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "banking77" / "test.csv"


def timed_labels(texts: list[str], params: ClassifyParams) -> tuple[list[str], float]:
    workspace = local(get_settings())  # the models `lmops models` lists
    run = dict(settings=workspace.settings, registry=workspace.registry)
    engine.classify(texts[:64], params, **run)  # load and warm up
    started = time.perf_counter()
    predictions = engine.classify(texts, params, **run)
    return [p.label for p in predictions], len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="a fine-tuned classification model")
    parser.add_argument("--data", type=Path, default=DATA, help="labeled held-out texts")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    data = load_classification(args.data)
    texts, gold = list(data.texts), list(data.labels)
    fp32, fp32_rate = timed_labels(texts, ClassifyParams(model=args.model, batch_size=args.batch_size,
                                                         quantize=False))
    int8, int8_rate = timed_labels(texts, ClassifyParams(model=args.model, batch_size=args.batch_size,
                                                         quantize=True))
    verdict = int8_verdict(fp32, int8, gold)
    print(f"{args.model} on {len(texts)} texts of {args.data.name}")
    print(f"{'':6s} {'accuracy':>9s} {'texts/s':>9s}")
    print(f"{'fp32':6s} {verdict['accuracy_fp32']:9.4f} {fp32_rate:9.1f}")
    print(f"{'int8':6s} {verdict['accuracy_int8']:9.4f} {int8_rate:9.1f}  ({int8_rate / fp32_rate:.2f}x)")
    change = 100 * (verdict["accuracy_int8"] - verdict["accuracy_fp32"])
    print(f"same label: {verdict['agreement']:.4f}; accuracy change {change:+.2f} points")
    print("int8 as default:", "holds (>= 99.5% agree, within 0.5 points)" if verdict["default"] else
          "does not hold (needs >= 99.5% agreement and accuracy within 0.5 points)")


if __name__ == "__main__":
    main()
