"""Grouping queued classify jobs: same workspace and params together, each job's predictions
back in its own order; large, lone and malformed jobs run on their own."""

import pytest

from engine.classify_batching import MAX_GROUP_TEXTS, MAX_JOB_TEXTS
from engine.classify_batching import group_classify_jobs as group_built
from engine.kinds import get_kind


def group_classify_jobs(jobs):
    """Group raw queue rows as the worker does: params built once, bad ones failed before."""
    spec, built = get_kind("classify"), []
    for job_id, workspace_id, raw in jobs:
        try:
            built.append((job_id, workspace_id, spec.build(raw)))
        except ValueError:
            continue
    return group_built(built)

ZERO_SHOT = {"labels": ["positive", "negative"]}


def test_jobs_asking_the_same_of_one_workspace_are_grouped():
    jobs = [(1, 10, {"texts": ["a", "b"], **ZERO_SHOT}),
            (2, 10, {"texts": ["c"], "labels": ["negative", "positive"]}),  # another label order
            (3, 10, {"texts": ["d"], **ZERO_SHOT}),
            (4, 11, {"texts": ["e"], **ZERO_SHOT}),  # another workspace
            (5, 10, {"texts": ["f"], "model": "sentiment"}),
            (6, 10, {"texts": ["g", "h"], "model": "sentiment"})]
    groups, alone = group_classify_jobs(jobs)
    assert [(g.workspace_id, g.job_ids) for g in groups] == [(10, [1, 3]), (10, [5, 6])]
    assert groups[0].texts == ["a", "b", "d"]
    assert sorted(alone) == [2, 4]


def test_each_job_gets_the_predictions_of_its_own_texts():
    (group,), _ = group_classify_jobs([(1, 10, {"texts": ["a", "b"], **ZERO_SHOT}),
                                       (2, 10, {"texts": ["c"], **ZERO_SHOT}),
                                       (3, 10, {"texts": ["d", "e", "f"], **ZERO_SHOT})])
    assert group.split(["A", "B", "C", "D", "E", "F"]) == {1: ["A", "B"], 2: ["C"], 3: ["D", "E", "F"]}
    with pytest.raises(ValueError, match="5 predictions for 6 texts"):
        group.split(["A"] * 5)


def test_large_and_malformed_jobs_run_alone_and_groups_stay_bounded():
    big = {"texts": ["x"] * (MAX_JOB_TEXTS + 1), **ZERO_SHOT}
    full = {"texts": ["y"] * MAX_JOB_TEXTS, **ZERO_SHOT}
    jobs = [(1, 10, big), (2, 10, {"texts": "not a list"}), (3, 10, {"texts": []}),
            *((i, 10, full) for i in range(10, 16))]
    groups, alone = group_classify_jobs(jobs)
    assert sorted(alone) == [1]  # 2 and 3 never reach grouping: their params don't build
    assert [g.job_ids for g in groups] == [[10, 11, 12, 13], [14, 15]]  # 4 x 64 texts fill one
    assert all(len(g.texts) <= MAX_GROUP_TEXTS for g in groups)
