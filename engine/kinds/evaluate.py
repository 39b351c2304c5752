"""The `evaluate` job kind: metrics and charts of a model on a data set."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from engine.eval_params import EvalParams
from engine.kinds.spec import PRIORITY_EVALUATE, JobContext, JobSpec, register_kind


def run(params: EvalParams, ctx: JobContext) -> dict[str, Any]:
    from engine.evaluation import evaluate

    if params.out_dir is None:
        params = replace(params, out_dir=ctx.artifacts / "eval")
    return evaluate(params, settings=ctx.settings, registry=ctx.registry)


def summarize(result: Mapping[str, Any]) -> str:
    return metrics_line(result)


def metrics_line(metrics: Mapping[str, Any]) -> str:
    """`accuracy 91.2% · macro-F1 90.8%` or `loss 1.23 · perplexity 3.4`."""
    parts = []
    for key, label, rate in (("accuracy", "accuracy", True), ("macro_f1", "macro-F1", True),
                             ("loss", "loss", False), ("perplexity", "perplexity", False)):
        value = metrics.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{label} {value:.1%}" if rate else f"{label} {value:.3g}")
    return " · ".join(parts[:2])


SPEC = register_kind(JobSpec(
    name="evaluate", params=EvalParams, run=run, priority=PRIORITY_EVALUATE,
    summarize=summarize, title="Evaluation", function="engine.evaluation:evaluate"))
