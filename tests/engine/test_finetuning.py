"""engine.finetune on tiny runs: loss falls, adapters reload exactly, resume, cancel, methods."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import engine
from engine.classification import ClassifyParams
from engine.data import DataError
from engine.errors import CancelledError
from engine.finetune_params import FinetuneParams
from engine.finetuning import finetune
from engine.registry import ModelRegistry

ROWS = {
    "billing": ["I was charged twice this month", "refund my last invoice please",
                "why is my bill so high", "the payment failed on my card",
                "cancel my subscription and refund me", "invoice shows the wrong amount"],
    "bug": ["the app crashes when I open settings", "login button does nothing",
            "error 500 when saving my profile", "the page freezes after upload",
            "notifications stopped working", "search returns a blank screen"],
    "praise": ["love the new design, great job", "this update is fantastic",
               "support was quick and friendly", "best app I have used all year",
               "thank you, everything works perfectly", "really happy with the service"],
}


def write_csv(path: Path, rows: dict[str, list[str]]) -> Path:
    lines = ["text,label"] + [f'"{t}",{label}' for label, texts in rows.items() for t in texts]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("data") / "tickets.csv", ROWS)


def params(data: Path, **overrides) -> FinetuneParams:
    base = dict(data=str(data), max_steps=6, batch_size=8, max_length=32, early_stopping_patience=None,
                validation_fraction=0.2, save_checkpoints=False)
    return FinetuneParams(**{**base, **overrides})


def test_lora_classifier_learns_saves_and_reloads(tiny_csv, settings, tmp_path):
    reports = []
    result = finetune(params(tiny_csv, name="tickets-lora", max_steps=30, lr=5e-3, eval_steps=15),
                      settings=settings, progress=reports.append, output_dir=tmp_path / "out")
    losses = [r.loss for r in reports if r.loss is not None]
    assert losses[-1] < losses[0], losses
    assert reports[-1].step == reports[-1].total_steps == 30
    folder = Path(result.path)
    for name in ("adapter_config.json", "labels.json", "params.json", "metrics.json", "loss_curve.png",
                 "confusion_matrix.png"):
        assert (folder / name).exists(), name
    assert json.loads((folder / "labels.json").read_text())["labels"] == ["billing", "bug", "praise"]
    assert set(result.metrics) >= {"n", "accuracy", "macro_f1", "weighted_f1", "loss", "per_label",
                                   "confusion_matrix", "plots"}
    assert "tickets-lora" in ModelRegistry(settings.models_dir).names()
    # int8 was checked on the held-out rows: too few of them to make it the default
    int8 = json.loads((folder / "metrics.json").read_text())["int8"]
    assert int8 == result.metrics["int8"] and int8["n"] == result.metrics["n"]
    assert 0 <= int8["agreement"] <= 1 and int8["default"] is False
    from engine import model_cache  # the check's two loaded copies are not kept
    assert model_cache.evict(lambda key: key[:2] == ("classifier", result.path)) == 0

    # the registered model (adapter merged at load) gives the same logits as the unmerged adapter
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    text = "my card payment failed twice"
    (prediction,) = engine.classify([text], ClassifyParams(model="tickets-lora"), settings=settings)
    labels = ["billing", "bug", "praise"]
    base = AutoModelForSequenceClassification.from_pretrained(
        ModelRegistry(settings.models_dir).resolve("minilm").path, num_labels=3)
    peft_model = PeftModel.from_pretrained(base, str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with torch.inference_mode():
        probs = peft_model(**tokenizer([text], return_tensors="pt")).logits.softmax(-1)[0].tolist()
    for label, p in zip(labels, probs, strict=True):
        assert prediction.scores[label] == pytest.approx(p, abs=1e-5)


def test_cancel_stops_within_one_step_and_resume_continues(tiny_csv, settings, tmp_path):
    seen: list[int] = []
    out = tmp_path / "resumable"
    p = params(tiny_csv, name="resumable", max_steps=6, save_steps=2, eval_steps=2, save_checkpoints=True)
    with pytest.raises(CancelledError, match="step 2"):
        finetune(p, settings=settings, output_dir=out, progress=lambda r: seen.append(r.step),
                 should_cancel=lambda: bool(seen) and seen[-1] >= 2)
    assert max(seen) == 2
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    resumed: list[int] = []
    result = finetune(FinetuneParams(**{**p.__dict__, "resume": True}), settings=settings,
                      output_dir=out, progress=lambda r: resumed.append(r.step))
    assert min(s for s in resumed if s) == 3 and max(resumed) == 6
    assert Path(result.path).is_dir()


@pytest.mark.parametrize("method", ["adalora", "ia3", "prefix", "full"])
def test_every_method_trains_a_classifier(method, tiny_csv, settings, tmp_path):
    result = finetune(params(tiny_csv, name=f"tickets-{method}", method=method, max_steps=3),
                      settings=settings, output_dir=tmp_path / method)
    (prediction,) = engine.classify(["the app crashes"], ClassifyParams(model=result.name), settings=settings)
    assert prediction.label in {"billing", "bug", "praise"}


def test_one_class_file_is_refused_with_report(tmp_path, settings):
    data = write_csv(tmp_path / "one.csv", {"bug": ROWS["bug"]})
    with pytest.raises(DataError, match="one label"):
        finetune(params(data, name="one"), settings=settings, output_dir=tmp_path / "x")


def test_too_few_rows_per_class_names_the_class(tmp_path, settings):
    data = write_csv(tmp_path / "few.csv", {"bug": ROWS["bug"], "billing": ["refund please"]})
    with pytest.raises(DataError, match="billing"):
        finetune(params(data, name="few"), settings=settings, output_dir=tmp_path / "x")


def test_empty_rows_are_reported_by_row_number(tmp_path, settings):
    data = tmp_path / "gaps.csv"
    data.write_text("text,label\n,bug\n\"\",billing\n", encoding="utf-8")
    with pytest.raises(DataError, match="row"):
        finetune(params(data, name="gaps"), settings=settings, output_dir=tmp_path / "x")


@pytest.mark.parametrize("overrides, needle", [
    ({"method": "prefix", "gradient_checkpointing": True}, "gradient checkpointing"),
    ({"method": "bitfit"}, "bitfit"), ({"epochs": 0}, "epochs"), ({"lr": 2.0}, "lr"),
    ({"task": "regress"}, "regress"), ({"schedule": "zigzag"}, "zigzag"),
])
def test_params_validate_themselves(overrides, needle):
    with pytest.raises(ValueError, match=needle):
        FinetuneParams(data="x.csv", **overrides)


DIALOGUE = [("How do I reset my password?", "Open Settings, choose Account, then Reset password."),
            ("Where can I see my invoices?", "Invoices are under Billing in your account menu."),
            ("The app crashes on start.", "Please update to the latest version and restart."),
            ("Can I change my email?", "Yes: Settings, Account, Email, then confirm the link."),
            ("How do I contact support?", "Write to support in the Help menu; we answer within a day."),
            ("Is there a dark mode?", "Yes, under Settings, Appearance, Dark.")]


@pytest.fixture(scope="module")
def dialogue_jsonl(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dialogue") / "support.jsonl"
    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            for q, a in DIALOGUE * 2]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("method", ["lora", "adalora", "ia3", "prefix", "full"])
def test_every_method_trains_a_dialogue_model(method, dialogue_jsonl, settings, tmp_path):
    result = finetune(params(dialogue_jsonl, task="chat", name=f"support-{method}", method=method,
                             max_steps=2, batch_size=4, max_length=48),
                      settings=settings, output_dir=tmp_path / method)
    assert result.task == "chat" and result.metrics["loss"] > 0
    assert result.metrics["perplexity"] == pytest.approx(math.exp(result.metrics["loss"]), rel=1e-6)
    if method != "full":
        assert (Path(result.path) / "adapter_config.json").exists()


def test_dialogue_loss_counts_only_assistant_tokens(settings):
    from transformers import AutoTokenizer

    from engine.causal_lm import materialize
    from engine.training_data import IGNORE_INDEX, dialogue_examples

    folder = materialize(ModelRegistry(settings.models_dir).resolve("smollm2"), cache_dir=settings.cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    conversation = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}]
    (example,) = dialogue_examples(tokenizer, [conversation], max_length=128)
    trained = [t for t, label in zip(example["input_ids"], example["labels"]) if label != IGNORE_INDEX]
    assert "Hello!" in tokenizer.decode(trained)
    assert "Hi there" not in tokenizer.decode(trained)
    assert example["labels"][0] == IGNORE_INDEX


def test_latest_checkpoint_skips_and_removes_incomplete_ones(tmp_path):
    from engine.finetuning import latest_checkpoint

    for step, complete in ((2, True), (4, True), (6, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "adapter_model.safetensors").write_bytes(b"x")
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    assert not (tmp_path / "checkpoint-6").exists()
    assert latest_checkpoint(tmp_path / "missing") is None


def test_adalora_allocates_ranks_during_training(tiny_csv, settings, tmp_path):
    # peft's rank allocation needs a call after every optimizer step that the Trainer doesn't
    # make; with 10 steps the final budget is fixed at step 8 and saved as the rank pattern
    result = finetune(params(tiny_csv, name="tickets-adalora-ranks", method="adalora", max_steps=10),
                      settings=settings, output_dir=tmp_path / "ranks")
    config = json.loads((Path(result.path) / "adapter_config.json").read_text())
    assert config["rank_pattern"], "update_and_allocate never ran"
    (prediction,) = engine.classify(["refund my card"], ClassifyParams(model=result.name), settings=settings)
    assert prediction.label in {"billing", "bug", "praise"}


def test_a_resumed_fine_tune_ends_where_an_uninterrupted_one_does(tiny_csv, settings, tmp_path):
    # the Trainer restores torch's generators and the data order; the dropout masks' generator
    # (engine.fast_dropout) is restored from the checkpoint as well
    from safetensors.torch import load_file

    def adapter(result) -> dict[str, torch.Tensor]:
        return load_file(Path(result.path) / "adapter_model.safetensors")

    p = params(tiny_csv, max_steps=4, save_steps=2, eval_steps=2, save_checkpoints=True)
    straight = finetune(FinetuneParams(**{**p.__dict__, "name": "straight"}), settings=settings,
                        output_dir=tmp_path / "straight")
    seen: list[int] = []
    interrupted = FinetuneParams(**{**p.__dict__, "name": "interrupted"})
    with pytest.raises(CancelledError):
        finetune(interrupted, settings=settings, output_dir=tmp_path / "interrupted",
                 progress=lambda r: seen.append(r.step), should_cancel=lambda: bool(seen) and seen[-1] >= 2)
    assert (tmp_path / "interrupted" / "checkpoints" / "checkpoint-2" / "dropout_rng.json").exists()
    resumed = finetune(FinetuneParams(**{**interrupted.__dict__, "resume": True}), settings=settings,
                       output_dir=tmp_path / "interrupted")
    expected, got = adapter(straight), adapter(resumed)
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=1e-6, msg=name)


def test_ia3_targets_come_from_peft_by_model_type(settings, monkeypatch):
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as PEFT_FEEDFORWARD,
    )
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as PEFT_TARGETS,
    )

    from engine import peft_methods
    from engine.errors import EngineError

    spec = ModelRegistry(settings.models_dir).resolve("minilm")
    model_type = json.loads((Path(spec.path) / "config.json").read_text())["model_type"]
    assert model_type == "bert"
    config = peft_methods.build_peft_config("ia3", task="classify", model_type=model_type)
    assert set(config.target_modules) == set(PEFT_TARGETS["bert"])
    assert set(config.feedforward_modules) == set(PEFT_FEEDFORWARD["bert"])
    # a model type peft doesn't know: our fallback table, else target_modules must be named
    assert "my-arch" not in PEFT_TARGETS
    with pytest.raises(EngineError, match="target_modules"):
        peft_methods.build_peft_config("ia3", task="classify", model_type="my-arch")
    monkeypatch.setitem(peft_methods.IA3_FALLBACK_TARGETS, "my-arch", (["k", "ff"], ["ff"]))
    config = peft_methods.build_peft_config("ia3", task="classify", model_type="my-arch")
    assert (set(config.target_modules), set(config.feedforward_modules)) == ({"k", "ff"}, {"ff"})
