"""CSV formula injection (issue 11, item 6): the CSV files lmops writes never hand a spreadsheet a
cell it would run as a formula. Cells from users that start with `=`, `+`, `-`, `@`, a tab or a
carriage return get a `'` in front (OWASP's advice); the numbers lmops writes stay numbers."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest

from engine.csv_safety import FORMULA_STARTS, safe_cell

HOSTILE = [
    '=HYPERLINK("http://x","y")',
    "+cmd|' /C calc'!A0",
    "@SUM(1,2)",
    "=1+1",
    "-2+3",
    "\t=2+5",  # a tab first (the file reader strips it; what is left is still a formula)
    "\r+4+4",  # a carriage return first
]
NORMAL = "the weather is lovely today"


def lmops(*args: str) -> subprocess.CompletedProcess[str]:
    """The console script, as a user runs it (LMOPS_HOME is the session's temp dir)."""
    env = {**os.environ, "LMOPS_DEBUG": ""}
    return subprocess.run([sys.executable, "-m", "lmops.cli", *args], check=False,
                          capture_output=True, text=True, env=env, timeout=300)


def classify_file(tmp_path, texts: list[str], labels: str,
                  given: list[str] | None = None) -> list[dict[str, str]]:
    """Classify a CSV of `texts` (and a `label` column of `given`, when given)."""
    data = tmp_path / "texts.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"] if given else ["text"])
        writer.writerows(zip(texts, given, strict=True) if given else ([t] for t in texts))
    result = lmops("classify", "--labels", labels, "--file", str(data))
    assert result.returncode == 0, result.stderr
    with (tmp_path / "texts.csv.predictions.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert not [c for row in rows for c in row if c.startswith(FORMULA_STARTS)], rows
    header, *body = rows
    return [dict(zip(header, row, strict=True)) for row in body]


def test_classify_file_neutralises_formula_texts(tmp_path):
    rows = classify_file(tmp_path, [*HOSTILE, NORMAL], "a,b")
    assert len(rows) == len(HOSTILE) + 1
    for given, row in zip(HOSTILE, rows, strict=False):
        assert row["text"].startswith("'"), row
        assert row["text"][1:].strip() == given.strip()  # only the quote added
    assert rows[-1]["text"] == NORMAL
    assert {row["predicted_label"] for row in rows} <= {"a", "b"}
    for row in rows:  # lmops' own numbers are left as numbers
        assert int(row["row"]) >= 1
        assert 0.0 <= float(row["score"]) <= 1.0
        assert float(row["score_a"]) + float(row["score_b"]) == pytest.approx(1.0, abs=1e-4)


def test_classify_file_neutralises_formula_labels(tmp_path):
    rows = classify_file(tmp_path, ["one plus one", "hello there"], "=1+1,@greeting")
    assert {row["predicted_label"] for row in rows} <= {"'=1+1", "'@greeting"}
    assert {"score_=1+1", "score_@greeting"} <= set(rows[0])  # header cells start with "score_"


def test_classify_file_keeps_the_input_label_column(tmp_path):
    """issue 12, item 9: the prediction is `predicted_label`; a `label` column the input already
    had is written as it was (only neutralised against formulas), not overwritten."""
    rows = classify_file(tmp_path, ["I was charged twice", "the app crashes", "love it"],
                         "billing,bug,praise", given=["billing", "=HYPERLINK(1)", "unsure"])
    assert list(rows[0])[:5] == ["row", "text", "label", "predicted_label", "score"]
    assert [row["label"] for row in rows] == ["billing", "'=HYPERLINK(1)", "unsure"]
    assert {row["predicted_label"] for row in rows} <= {"billing", "bug", "praise"}
    assert rows[0]["predicted_label"] == "billing"


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_safe_cell_quotes_every_formula_start(start):
    assert safe_cell(start + "x") == "'" + start + "x"


@pytest.mark.parametrize("value, expected", [
    ("", ""),
    (None, ""),
    ("-", "'-"),
    ("=", "'="),
    ("a=b+c", "a=b+c"),  # = in the middle is not a formula
    ("1+1", "1+1"),
    ("hello @you", "hello @you"),
    ("'=already", "'=already"),
    (" =1+1", " =1+1"),  # only the first character counts, as OWASP lists it
    ("plain text", "plain text"),
])
def test_safe_cell_edges(value, expected):
    assert safe_cell(value) == expected
