"""The `lmops` console script end to end: JSON on stdout, one clear error line, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def lmops(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LMOPS_DEBUG": ""}
    return subprocess.run([sys.executable, "-m", "lmops.cli", *args], capture_output=True, text=True,
                          env=env, input=stdin, timeout=300)


def assert_clean_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_models_json_lists_builtins():
    result = lmops("models", "--json")
    assert result.returncode == 0, result.stderr
    models = {m["name"]: m for m in json.loads(result.stdout)}
    assert {"minilm", "smollm2"} <= set(models)
    for m in models.values():
        assert set(m) == {"name", "task", "base", "method", "path", "labels", "metrics", "created"}


def test_classify_zero_shot_json_shape():
    result = lmops("classify", "--json", "--labels", "positive,negative", "I love it", "I hate it")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["label"] for r in rows] == ["positive", "negative"]
    assert set(rows[0]) == {"text", "label", "score", "scores", "truncated"}


def test_classify_file_writes_predictions(tmp_path):
    data = tmp_path / "texts.csv"
    data.write_text("id,text\n1,what a fantastic day\n2,this is awful and broken\n", encoding="utf-8")
    result = lmops("classify", "--labels", "positive,negative", "--file", str(data))
    assert result.returncode == 0, result.stderr
    out = (tmp_path / "texts.csv.predictions.csv").read_text(encoding="utf-8").splitlines()
    assert out[0].startswith("row,text,predicted_label,score,truncated")
    assert len(out) == 3 and ",positive," in out[1] and ",negative," in out[2]


def test_classify_reads_stdin():
    result = lmops("classify", "--json", "--labels", "sports,food", stdin="the goalkeeper saved it\n\n")
    assert result.returncode == 0, result.stderr
    assert [r["label"] for r in json.loads(result.stdout)] == ["sports"]


@pytest.mark.parametrize("args, needles", [
    (("classify", "--model", "nope", "hi"), ("unknown model 'nope'", "minilm")),
    (("classify", "--labels", "a,b", ""), ("empty text",)),
    (("classify", "--labels", "a", "hello"), ("at least two",)),
    (("classify", "--labels", "a,b", "--file", "/no/such/file.csv"), ("/no/such/file.csv",)),
])
def test_bad_input_is_one_clear_line(args, needles):
    assert_clean_error(lmops(*args), *needles)


def test_non_utf8_file_is_refused(tmp_path):
    data = tmp_path / "latin.csv"
    data.write_bytes("text\ncaf\xe9 au lait\n".encode("latin-1"))
    assert_clean_error(lmops("classify", "--labels", "a,b", "--file", str(data)), "UTF-8")


def test_file_without_text_column_is_refused(tmp_path):
    data = tmp_path / "cols.csv"
    data.write_text("foo,bar\n1,2\n", encoding="utf-8")
    assert_clean_error(lmops("classify", "--labels", "a,b", "--file", str(data)), "foo", "text")


def test_classify_defaults_to_the_builtin_sentiment_model():
    result = lmops("classify", "--json", "I love it, wonderful service", "This is awful, I hate it")
    assert result.returncode == 0, result.stderr
    assert [r["label"] for r in json.loads(result.stdout)] == ["positive", "negative"]


def test_help_of_every_command():
    for command in ("models", "classify", "chat", "eval", "finetune", "jobs", "worker", "serve", "dev"):
        result = lmops(command, "--help")
        assert result.returncode == 0 and "usage: lmops" in result.stdout
