"""The library's keyword forms (`engine.classify(texts, labels=[...])`, `engine.chat("hi",
max_new_tokens=4)`, `engine.finetune(data=..., name=...)`, `engine.evaluate(model=..., data=...)`)
beside the params objects, and the help every params field carries."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import engine
from engine.classify_params import ClassifyParams
from engine.dialogue import ChatParams
from engine.eval_params import EvalParams
from engine.finetune_params import FinetuneParams
from engine.params import field_help, resolve_params

PARAMS_CLASSES = (ClassifyParams, ChatParams, FinetuneParams, EvalParams)
SENTIMENT = ["positive", "negative"]


# -- resolve_params ------------------------------------------------------------------------------

def test_resolve_params_returns_the_object_or_builds_one():
    given = ChatParams(max_new_tokens=3)
    assert resolve_params(ChatParams, given, {}) is given
    assert resolve_params(ChatParams, None, {}) == ChatParams()
    assert resolve_params(ChatParams, None, {"max_new_tokens": 3}) == given
    assert resolve_params(ClassifyParams, None, {"labels": ["a", "b"]}).labels == ("a", "b")


def test_unknown_keyword_names_it_and_the_known_fields():
    with pytest.raises(TypeError, match="'temprature'") as error:
        resolve_params(ChatParams, None, {"temprature": 0.5}, caller="chat")
    message = str(error.value)
    assert message.startswith("chat()")
    for name in ("model", "max_new_tokens", "temperature", "top_p", "device", "system"):
        assert name in message


def test_a_params_object_and_keywords_together_are_refused():
    with pytest.raises(TypeError, match="both a ChatParams and the keyword argument model"):
        resolve_params(ChatParams, ChatParams(), {"model": "smollm2"}, caller="chat")


def test_a_params_object_of_the_wrong_kind_is_refused():
    with pytest.raises(TypeError, match="takes a ChatParams.*not str"):
        resolve_params(ChatParams, "smollm2", {}, caller="chat")
    with pytest.raises(TypeError, match="takes a ClassifyParams.*not ChatParams"):
        resolve_params(ClassifyParams, ChatParams(), {}, caller="classify")


def test_a_missing_required_field_is_named():
    with pytest.raises(TypeError, match=r"finetune\(\) needs data=\.\.\."):
        resolve_params(FinetuneParams, None, {"name": "x"}, caller="finetune")


def test_the_params_class_still_validates_keyword_values():
    with pytest.raises(ValueError, match="batch_size"):
        resolve_params(ClassifyParams, None, {"batch_size": 0})


# -- classify ------------------------------------------------------------------------------------

def test_classify_zero_shot_with_label_keywords(settings):
    texts = ["I absolutely love this, it is wonderful!", "This is terrible, I hate it."]
    by_keyword = engine.classify(texts, labels=SENTIMENT, settings=settings)
    by_params = engine.classify(texts, ClassifyParams(labels=tuple(SENTIMENT)), settings=settings)
    assert [p.label for p in by_keyword] == ["positive", "negative"]
    assert [p.scores for p in by_keyword] == [p.scores for p in by_params]


def test_classify_one_string_gives_a_list_of_one(settings):
    predictions = engine.classify("I love this phone, it is wonderful", model="sentiment",
                                  settings=settings)
    assert isinstance(predictions, list) and len(predictions) == 1
    assert predictions[0].label == "positive"
    assert predictions[0].text == "I love this phone, it is wonderful"


def test_classify_keyword_errors(settings):
    with pytest.raises(TypeError, match="'label'.*labels"):
        engine.classify(["hi"], label=SENTIMENT, settings=settings)
    with pytest.raises(TypeError, match="both"):
        engine.classify(["hi"], ClassifyParams(), labels=SENTIMENT, settings=settings)


# -- chat ----------------------------------------------------------------------------------------

def test_chat_and_chat_stream_take_keywords(smollm2, settings):
    reply = engine.chat("What is the capital of France?", model="smollm2", max_new_tokens=4,
                        device="cpu", settings=settings)
    same = engine.chat("What is the capital of France?", ChatParams(max_new_tokens=4, device="cpu"),
                       settings=settings)
    assert reply.reply and reply.reply == same.reply and 0 < reply.tokens <= 4
    chunks = list(engine.chat_stream("What is the capital of France?", max_new_tokens=4,
                                     device="cpu", settings=settings))
    assert "".join(chunks) == reply.reply


def test_chat_keyword_errors_come_before_loading(settings):
    with pytest.raises(TypeError, match="chat_stream\\(\\) got unexpected keyword argument 'max_tokens'"):
        engine.chat_stream("hi", max_tokens=4, settings=settings)
    with pytest.raises(TypeError, match="both"):
        engine.chat("hi", ChatParams(), max_new_tokens=4, settings=settings)
    with pytest.raises(ValueError, match="max_new_tokens"):
        engine.chat("hi", max_new_tokens=0, settings=settings)


# -- finetune ------------------------------------------------------------------------------------

ROWS = {
    "billing": ["I was charged twice this month", "refund my last invoice please",
                "why is my bill so high", "the payment failed on my card"],
    "bug": ["the app crashes when I open settings", "login button does nothing",
            "error 500 when saving my profile", "the page freezes after upload"],
}


@pytest.fixture()
def tiny_csv(tmp_path) -> Path:
    path = tmp_path / "tickets.csv"
    lines = ["text,label"] + [f'"{t}",{label}' for label, texts in ROWS.items() for t in texts]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_finetune_keyword_errors_fail_fast(settings, tmp_path):
    with pytest.raises(TypeError, match="'epoch'.*epochs"):
        engine.finetune(data="t.csv", name="t1", epoch=2, settings=settings)
    with pytest.raises(TypeError, match="needs data="):
        engine.finetune(name="t1", settings=settings)
    with pytest.raises(TypeError, match="both"):
        engine.finetune(FinetuneParams(data="t.csv"), epochs=2, settings=settings)
    with pytest.raises(ValueError, match="zigzag"):
        engine.finetune(data="t.csv", schedule="zigzag", settings=settings)
    assert not (tmp_path / "out").exists()


def test_finetune_with_keyword_fields(tiny_csv, settings, tmp_path):
    result = engine.finetune(data=str(tiny_csv), name="library-keywords", max_steps=1, batch_size=8,
                             max_length=32, early_stopping_patience=None, validation_fraction=0.25,
                             save_checkpoints=False, settings=settings, output_dir=tmp_path / "out")
    assert result.name == "library-keywords" and result.method == "lora"
    assert (Path(result.path) / "adapter_config.json").exists()


# -- evaluate ------------------------------------------------------------------------------------

SENTIMENT_CSV = """text,label
"I absolutely love this, it is wonderful!",positive
"This is great, I am very happy with it.",positive
"This is terrible, I hate it.",negative
"An awful, horrible and disappointing product.",negative
"""


def test_evaluate_with_keyword_fields(settings, tmp_path):
    data = tmp_path / "sentiment.csv"
    data.write_text(SENTIMENT_CSV, encoding="utf-8")
    metrics = engine.evaluate(model="minilm", data=data, labels=SENTIMENT, out_dir=tmp_path / "out",
                              settings=settings)
    assert metrics["n"] == 4 and metrics["accuracy"] == pytest.approx(1.0)
    assert (tmp_path / "out" / "metrics.json").is_file()


def test_evaluate_keyword_errors(settings):
    with pytest.raises(TypeError, match="'dataset'.*data"):
        engine.evaluate(model="minilm", dataset="x.csv", settings=settings)
    with pytest.raises(TypeError, match="needs data="):
        engine.evaluate(model="minilm", settings=settings)
    with pytest.raises(TypeError, match="both"):
        engine.evaluate(EvalParams(model="minilm", data="x.csv"), batch_size=8, settings=settings)


# -- field help ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", PARAMS_CLASSES, ids=lambda c: c.__name__)
def test_every_field_has_help(cls):
    helps = field_help(cls)
    assert list(helps) == [f.name for f in dataclasses.fields(cls)]
    missing = [name for name, text in helps.items() if not text.strip()]
    assert not missing, f"{cls.__name__} fields without help: {missing}"
    for name, text in helps.items():
        assert "\n" not in text and len(text) < 200, name


@pytest.mark.parametrize("cls", PARAMS_CLASSES, ids=lambda c: c.__name__)
def test_choices_hold_the_default(cls):
    for f in dataclasses.fields(cls):
        if "choices" in f.metadata and f.default is not dataclasses.MISSING:
            assert f.default in f.metadata["choices"], f.name


def test_fixed_value_fields_list_their_choices():
    from engine.finetune_params import SCHEDULES, TASKS
    from engine.peft_methods import METHODS

    choices = {f.name: f.metadata.get("choices") for f in dataclasses.fields(FinetuneParams)}
    assert choices["task"] == TASKS and choices["method"] == METHODS
    assert choices["schedule"] == SCHEDULES and choices["device"] == ("auto", "cpu", "cuda")
    for cls in (ClassifyParams, ChatParams, EvalParams):
        device = next(f for f in dataclasses.fields(cls) if f.name == "device")
        assert device.metadata["choices"] == ("auto", "cpu", "cuda")
