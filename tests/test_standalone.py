"""The project stands alone: no committed file carries a machine's absolute path or needs the
`../shared` folder beside a clone, and the example data it ships instead is sound."""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ABSOLUTE_PATH = re.compile(r"(/work/|/root/\.|/home/[a-z]+/|site-packages/)")
EXAMPLES = REPO / "examples"


def tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    files = []
    for name in out.decode().split("\0"):
        path = REPO / name
        if name and path.is_file() and b"\0" not in path.read_bytes()[:8192]:  # text only
            files.append(path)
    return files


def _relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _matches(paths: list[Path], pattern: re.Pattern[str]) -> list[str]:
    found = []
    for path in paths:
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{_relative(path)}:{number}: {line.strip()[:120]}")
    return found


def test_no_machine_absolute_paths() -> None:
    files = [p for p in tracked_text_files() if not _relative(p).startswith("tests/")
             and _relative(p) != "docs/benchmarks.md"]
    assert _matches(files, ABSOLUTE_PATH) == []


def test_nothing_outside_tests_bench_and_docs_needs_shared() -> None:
    files = [p for p in tracked_text_files()
             if not _relative(p).startswith(("tests/", "bench/", "docs/"))]
    assert _matches(files, re.compile(re.escape("../shared"))) == []


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_example_banking77_slice_keeps_train_and_test_apart() -> None:
    train, test = (_rows(EXAMPLES / "banking77" / f"{name}.csv") for name in ("train", "test"))
    assert (len(train), len(test)) == (200, 80)
    intents = {row["category"] for row in train}
    assert len(intents) == 10 and {row["category"] for row in test} == intents
    assert not {r["text"].lower() for r in train} & {r["text"].lower() for r in test}
    attribution = (EXAMPLES / "banking77" / "README.md").read_text()
    assert "CC BY 4.0" in attribution and "PolyAI-LDN/task-specific-datasets" in attribution
    assert "Attribution 4.0 International" in (EXAMPLES / "banking77" / "LICENSE").read_text()


def test_example_tickets_load_as_classification_data() -> None:
    from engine.data import load_classification

    train = load_classification(EXAMPLES / "tickets.csv")
    held_out = load_classification(EXAMPLES / "tickets_held_out.csv")
    assert set(train.label_names) == set(held_out.label_names) == {"bug", "billing", "praise"}
    assert not set(train.texts) & set(held_out.texts)


def test_demo_uses_the_examples() -> None:
    demo = (REPO / "scripts" / "demo.sh").read_text()
    assert "examples/banking77/test.csv" in demo and "shared" not in demo
