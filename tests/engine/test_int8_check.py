"""The int8 rule (99.5% of fp32's labels, accuracy within half a point, 200 rows at least) and
`classify` choosing int8 by default only for models whose own check passed."""

from dataclasses import replace

import pytest

import engine
from engine import classification
from engine.classify_params import ClassifyParams
from engine.int8_check import MIN_ROWS, int8_by_default, int8_verdict
from engine.registry import ModelRegistry


def labels(n_diff: int, n: int = 1000) -> list[str]:
    return ["b"] * n_diff + ["a"] * (n - n_diff)


def test_verdict_follows_the_rule():
    gold = labels(0)
    assert int8_verdict(labels(0), labels(5), gold)["default"]  # 99.5% agree, -0.5 points
    assert not int8_verdict(labels(0), labels(6), gold)["default"]  # 99.4%
    verdict = int8_verdict(labels(0), labels(6), gold)
    assert verdict["agreement"] == pytest.approx(0.994) and verdict["n"] == 1000
    assert verdict["accuracy_fp32"] - verdict["accuracy_int8"] == pytest.approx(0.006)
    few = ["a"] * (MIN_ROWS - 1)
    assert not int8_verdict(few, few, few)["default"]  # too few rows to tell
    with pytest.raises(ValueError, match="as many"):
        int8_verdict(["a"], ["a", "b"], ["a"])


def test_classify_runs_int8_only_where_the_models_check_passed(settings, monkeypatch):
    registry = ModelRegistry(settings.models_dir)
    sentiment = registry.resolve("sentiment")
    registry.register(replace(sentiment, name="sent-int8", builtin=False,
                              metrics={**(sentiment.metrics or {}), "int8": {"default": True}}))
    assert int8_by_default(registry.resolve("sent-int8")) and not int8_by_default(sentiment)
    asked: list[bool] = []
    real = classification.load_classifier

    def spy(spec, **kwargs):
        asked.append(kwargs["quantize"])
        return real(spec, **kwargs)

    monkeypatch.setattr(classification, "load_classifier", spy)
    for model, quantize in [("sent-int8", None), ("sentiment", None), ("sent-int8", False),
                            ("sentiment", True)]:
        engine.classify(["great"], ClassifyParams(model=model, quantize=quantize),
                        settings=settings, registry=registry)
    assert asked == [True, False, False, True]
