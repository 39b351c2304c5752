"""engine.classify: zero-shot labels, fine-tuned style classifiers from a folder, bad input."""

from __future__ import annotations

import pytest
import torch

import engine
from engine import model_cache
from engine.classification import ClassifyParams
from engine.errors import DataError, LabelMismatchError, NoClassifierError, UnknownModelError
from engine.registry import ModelRegistry

SENTIMENT = ("positive", "negative")


@pytest.fixture(scope="module")
def random_head(tmp_path_factory, settings):
    """minilm with a seeded 5-label head, saved as a plain HuggingFace folder."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path_factory.mktemp("random-head")
    base = ModelRegistry(settings.models_dir).resolve("minilm").path
    labels = ["a", "b", "c", "d", "e"]
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=5, id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return str(folder)


def test_zero_shot_picks_the_obvious_label(settings):
    texts = ["I absolutely love this, it is wonderful!", "This is terrible, I hate it."]
    predictions = engine.classify(texts, ClassifyParams(labels=SENTIMENT), settings=settings)
    assert [p.label for p in predictions] == ["positive", "negative"]
    for p in predictions:
        assert set(p.scores) == set(SENTIMENT)
        assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-5)
        assert p.score == max(p.scores.values())
        assert p.truncated is False


def test_zero_shot_on_topics(settings):
    labels = ("weather", "football", "cooking")
    texts = ["It will rain heavily tomorrow with strong winds",
             "The striker scored two goals in the final",
             "Whisk the eggs and bake the cake for 30 minutes"]
    predictions = engine.classify(texts, ClassifyParams(labels=labels), settings=settings)
    assert [p.label for p in predictions] == list(labels)


def test_same_text_same_scores_and_model_loaded_once(random_head, settings):
    params = ClassifyParams(model=random_head)
    first = engine.classify(["hello there"], params, settings=settings)
    loads = dict(model_cache.load_count)
    second = engine.classify(["hello there"], params, settings=settings)
    assert first[0].scores == second[0].scores
    assert model_cache.load_count == loads  # no reload


def test_batch_and_single_predictions_agree(random_head, settings):
    texts = ["short", "a somewhat longer sentence about my card payment",
             "what is the exchange rate for euros to dollars today please tell me"]
    params = ClassifyParams(model=random_head, batch_size=2)
    batch = engine.classify(texts, params, settings=settings)
    for text, together in zip(texts, batch, strict=True):
        (alone,) = engine.classify([text], params, settings=settings)
        assert alone.label == together.label
        for label in alone.scores:
            assert alone.scores[label] == pytest.approx(together.scores[label], abs=1e-5)


def test_long_text_is_truncated_and_flagged(random_head, settings):
    long_text = "word " * 2000
    (p,) = engine.classify([long_text], ClassifyParams(model=random_head), settings=settings)
    assert p.truncated is True


def test_labels_restrict_a_classifier(random_head, settings):
    (p,) = engine.classify(["x y z"], ClassifyParams(model=random_head, labels=("a", "b")), settings=settings)
    assert set(p.scores) == {"a", "b"}
    with pytest.raises(LabelMismatchError, match="zzz"):
        engine.classify(["x"], ClassifyParams(model=random_head, labels=("a", "zzz")), settings=settings)


def test_quantized_path_runs_and_mostly_agrees(random_head, settings):
    texts = ["my card has not arrived", "how do I top up", "exchange rate please"]
    fast = engine.classify(texts, ClassifyParams(model=random_head, quantize=True), settings=settings)
    assert all(set(p.scores) == {"a", "b", "c", "d", "e"} for p in fast)


def test_no_classifier_names_both_options(settings, monkeypatch):
    import engine.registry

    without_sentiment = [m for m in engine.registry.builtin_models() if m.name != "sentiment"]
    monkeypatch.setattr(engine.registry, "builtin_models", lambda: without_sentiment)
    with pytest.raises(NoClassifierError, match="--model.*--labels"):
        engine.classify(["hi"], settings=settings)


def test_unknown_model_lists_known_ones(settings):
    with pytest.raises(UnknownModelError, match="minilm"):
        engine.classify(["hi"], ClassifyParams(model="no-such-model"), settings=settings)


@pytest.mark.parametrize("texts", [[""], ["ok", "   "], []])
def test_empty_text_is_refused(texts, settings):
    with pytest.raises(DataError, match="text"):
        engine.classify(texts, ClassifyParams(labels=SENTIMENT), settings=settings)


@pytest.mark.parametrize("kwargs, bad", [
    ({"labels": ("a",)}, "at least two"), ({"labels": ("a", "a")}, "repeat"),
    ({"labels": ("a", "")}, "empty"), ({"batch_size": 0}, "batch_size"), ({"device": "tpu"}, "tpu"),
])
def test_params_validate_themselves(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        ClassifyParams(**kwargs)


def test_encoder_without_labels_is_refused(settings):
    with pytest.raises(NoClassifierError, match="labels"):
        engine.classify(["hi"], ClassifyParams(model="minilm"), settings=settings)


def test_builtin_sentiment_model(settings):
    texts = ["I love this phone, it is wonderful", "Worst service ever, I am furious",
             "The package arrived on Tuesday"]
    predictions = engine.classify(texts, settings=settings)
    assert [p.label for p in predictions] == ["positive", "negative", "neutral"]
