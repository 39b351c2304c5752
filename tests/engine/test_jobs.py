"""The job-kind registry: every kind builds its typed params without torch, and bad params fail."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine.jobs import KINDS, get_kind
from engine.errors import EngineError

GOOD = {
    "classify": {"texts": ["hello"], "labels": ["a", "b"]},
    "chat": {"messages": [{"role": "user", "content": "hi"}], "max_new_tokens": 8},
    "evaluate": {"model": "minilm", "data": "x.csv", "labels": ["a", "b"]},
    "finetune": {"data": "x.csv", "method": "ia3", "epochs": 1},
    "noop": {"sleep": 0.1},
}


def test_every_kind_has_a_good_example():
    assert set(GOOD) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_build_validates(kind):
    assert get_kind(kind).build(GOOD[kind]) is not None
    with pytest.raises(ValueError, match="unknown option"):
        get_kind(kind).build({**GOOD[kind], "bogus": 1})


@pytest.mark.parametrize("kind, params, needle", [
    ("classify", {"texts": []}, "texts"), ("chat", {}, "messages"),
    ("finetune", {"data": "x.csv", "epochs": 0}, "epochs"), ("noop", {"sleep": -1}, "negative"),
])
def test_bad_params_name_the_problem(kind, params, needle):
    with pytest.raises(ValueError, match=needle):
        get_kind(kind).build(params)


def test_unknown_kind():
    with pytest.raises(EngineError, match="known"):
        get_kind("teleport")


def test_building_params_imports_no_torch():
    code = ("import sys; from engine.jobs import KINDS\n"
            f"for k, p in {GOOD!r}.items(): KINDS[k].build(p)\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
