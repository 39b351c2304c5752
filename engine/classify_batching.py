"""Queued `classify` jobs answered together: a burst of `/lm classify` becomes a few forward
passes instead of one per job. Jobs join a group when they are of the same workspace and ask
for the same classification (model, labels, device, quantisation); each gets back exactly the
predictions of its own texts, in order. Torch-free: grouping only reads the jobs' params.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.classify_params import ClassifyParams

MAX_JOB_TEXTS = 64  # a job with more texts than this runs on its own
MAX_GROUP_TEXTS = 256


@dataclass
class ClassifyGroup:
    """Jobs of one workspace with the same `ClassifyParams`, and their texts."""

    workspace_id: int
    params: ClassifyParams
    members: list[tuple[int, list[str]]] = field(default_factory=list)  # (job id, its texts)

    @property
    def job_ids(self) -> list[int]:
        return [job_id for job_id, _ in self.members]

    @property
    def texts(self) -> list[str]:
        return [text for _, texts in self.members for text in texts]

    def split(self, predictions: Sequence[Any]) -> dict[int, list[Any]]:
        """Each job's share of the predictions of `self.texts`."""
        if len(predictions) != len(self.texts):
            raise ValueError(f"{len(predictions)} predictions for {len(self.texts)} texts")
        shares, start = {}, 0
        for job_id, texts in self.members:
            shares[job_id] = list(predictions[start:start + len(texts)])
            start += len(texts)
        return shares


def group_classify_jobs(jobs: Iterable[tuple[int, int, Any]]
                        ) -> tuple[list[ClassifyGroup], list[int]]:
    """Split `(job id, workspace id, ClassifyJob)` into groups of two or more that can run as
    one call, and the ids of the jobs that run on their own (alone in their kind, or too many
    texts)."""
    open_groups: dict[tuple[int, ClassifyParams], ClassifyGroup] = {}
    groups: list[ClassifyGroup] = []
    alone: list[int] = []
    for job_id, workspace_id, job in jobs:
        texts = list(job.texts)
        if len(texts) > MAX_JOB_TEXTS:
            alone.append(job_id)
            continue
        how = job.how
        key = (workspace_id, how)
        group = open_groups.get(key)
        if group is None or len(group.texts) + len(texts) > MAX_GROUP_TEXTS:
            group = open_groups[key] = ClassifyGroup(workspace_id, how)
            groups.append(group)
        group.members.append((job_id, texts))
    alone.extend(g.job_ids[0] for g in groups if len(g.members) == 1)
    return [g for g in groups if len(g.members) > 1], alone
