"""The job-kind registry: every kind builds its typed params without torch, bad params fail,
and the facts of a kind (priority, lane, GPU preference) are its spec's."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine.kinds import all_kinds, get_kind, params_json
from engine.errors import EngineError

GOOD = {
    "classify": {"texts": ["hello"], "labels": ["a", "b"]},
    "chat": {"messages": [{"role": "user", "content": "hi"}], "max_new_tokens": 8},
    "evaluate": {"model": "minilm", "data": "x.csv", "labels": ["a", "b"]},
    "finetune": {"data": "x.csv", "method": "ia3", "epochs": 1},
    "embed": {"texts": ["hello"]},
    "noop": {"sleep": 0.1},
}
KINDS = all_kinds()


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
    code = ("import sys; from engine.kinds import all_kinds\n"
            f"for k, p in {GOOD!r}.items(): all_kinds()[k].build(p)\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_params_round_trip_through_the_queue_json():
    for name, data in GOOD.items():
        spec = get_kind(name)
        params = spec.build(data)
        fields = spec.job_fields(params)
        assert fields["kind"] == name and fields["priority"] == spec.priority
        rebuilt = spec.build(fields["params"])  # what the worker does, once
        assert type(rebuilt) is type(params) and params_json(rebuilt) == fields["params"]


def test_priorities_lanes_and_gpu_preference_are_the_kinds_facts():
    p = {name: spec.priority for name, spec in KINDS.items()}
    assert p["classify"] == p["chat"] == p["embed"] < p["evaluate"] < p["finetune"] < p["noop"]
    assert {n for n, s in KINDS.items() if s.lane == "predictions"} == {"classify", "chat", "embed"}
    assert [n for n, s in KINDS.items() if s.prefers_gpu] == ["finetune"]
    assert KINDS["classify"].batching is not None and KINDS["chat"].batching is None


def test_job_fields_refuse_another_kinds_params():
    with pytest.raises(TypeError, match="NoopParams"):
        get_kind("noop").job_fields(get_kind("embed").build(GOOD["embed"]))


def test_summaries():
    assert get_kind("classify").summarize(
        {"predictions": [{"label": "pos", "score": 0.91}]}) == "pos 91%"
    assert get_kind("evaluate").summarize({"accuracy": 0.5, "macro_f1": 0.25}) == \
        "accuracy 50.0% · macro-F1 25.0%"
    assert get_kind("embed").summarize({"embeddings": [{"text": "a", "vector": [1.0, 0.0]}]}) \
        == "1 vectors of 2 dims"
