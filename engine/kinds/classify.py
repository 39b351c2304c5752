"""The `classify` job kind: label texts with a fine-tuned classifier or zero-shot labels.
A burst of queued classify jobs asking the same classification is answered by one call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from engine.classify_batching import ClassifyGroup, group_classify_jobs
from engine.classify_params import ClassifyParams
from engine.kinds.spec import PRIORITY_PREDICT, JobContext, JobSpec, register_kind


@dataclass(frozen=True)
class ClassifyJob(ClassifyParams):
    """The texts to classify, and how (the `ClassifyParams` fields)."""

    texts: tuple[str, ...] = field(default=(), metadata={"help": "the texts to classify"})

    def __post_init__(self) -> None:
        super().__post_init__()
        texts = self.texts
        if not texts or not isinstance(texts, (list, tuple)) or \
                not all(isinstance(t, str) for t in texts):
            raise ValueError("a classify job needs texts: a list of strings")
        object.__setattr__(self, "texts", tuple(texts))

    @property
    def how(self) -> ClassifyParams:
        """The classification asked for, without the texts (jobs that share it are grouped)."""
        return ClassifyParams(**{f.name: getattr(self, f.name) for f in fields(ClassifyParams)})


def _model_used(how: ClassifyParams) -> str:
    from engine.classification import DEFAULT_CLASSIFIER, ZERO_SHOT_ENCODER

    return how.model or (ZERO_SHOT_ENCODER if how.labels else DEFAULT_CLASSIFIER)


def _classify(texts: list[str], how: ClassifyParams, ctx: JobContext) -> list[Any]:
    from engine.classification import classify

    return classify(texts, how, settings=ctx.settings, registry=ctx.registry)


def run(job: ClassifyJob, ctx: JobContext) -> dict[str, Any]:
    predictions = _classify(list(job.texts), job.how, ctx)
    return {"predictions": [p.to_json() for p in predictions], "model": _model_used(job)}


@dataclass(frozen=True)
class ClassifyBatching:
    """Up to `limit` queued jobs claimed at once (larger groups answer a burst a little faster
    but hold the CPU long enough to slow a bot on the same cores: docs/benchmarks.md)."""

    limit: int = 8

    def group(self, jobs: Sequence[tuple[int, int, ClassifyJob]]
              ) -> tuple[list[ClassifyGroup], list[int]]:
        return group_classify_jobs(jobs)

    def run(self, group: ClassifyGroup, ctx: JobContext) -> dict[int, dict[str, Any]]:
        predictions = _classify(group.texts, group.params, ctx)
        model = _model_used(group.params)
        return {job_id: {"predictions": [p.to_json() for p in share], "model": model}
                for job_id, share in group.split(predictions).items()}


def summarize(result: Mapping[str, Any]) -> str:
    predictions = result.get("predictions") or []
    if len(predictions) == 1:
        return f"{predictions[0].get('label')} {float(predictions[0].get('score') or 0):.0%}"
    return f"{len(predictions)} predictions"


SPEC = register_kind(JobSpec(
    name="classify", params=ClassifyJob, run=run, priority=PRIORITY_PREDICT,
    lane="predictions", batching=ClassifyBatching(), summarize=summarize,
    title="Classification", function="engine.classification:classify"))
