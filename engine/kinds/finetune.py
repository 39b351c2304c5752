"""The `finetune` job kind: PEFT (or full) fine-tuning, checkpointed in the job's folder so a
requeued job resumes where it stopped. GPU workers take these first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.finetune_params import FinetuneParams
from engine.kinds.evaluate import metrics_line
from engine.kinds.spec import PRIORITY_FINETUNE, JobContext, JobSpec, register_kind


def default_name(params: FinetuneParams, job_id: int | str) -> str:
    """The name of a queued fine-tune's model when none was given: fixed per job, so a
    resumed run registers the same model."""
    return params.name or f"{Path(params.data).stem[:24]}-{params.method}-job{job_id}"


def run(params: FinetuneParams, ctx: JobContext) -> dict[str, Any]:
    from engine.finetuning import finetune, latest_checkpoint

    out = ctx.artifacts / "finetune"
    checkpoint = latest_checkpoint(out / "checkpoints")
    resumed_from = int(checkpoint.name.removeprefix("checkpoint-")) if checkpoint else None
    params = replace(params, resume=checkpoint is not None or params.resume,
                     name=default_name(params, ctx.job_id))

    def report(progress) -> None:
        ctx.progress(progress.to_json())

    result = finetune(params, settings=ctx.settings, registry=ctx.registry, progress=report,
                      should_cancel=ctx.should_cancel, output_dir=out)
    return {**result.to_json(), "resumed_from_step": resumed_from}


def summarize(result: Mapping[str, Any]) -> str:
    line = metrics_line(result.get("metrics") or {})
    return f"{result.get('name')}: {line}" if line else str(result.get("name") or "")


SPEC = register_kind(JobSpec(
    name="finetune", params=FinetuneParams, run=run, priority=PRIORITY_FINETUNE,
    prefers_gpu=True, summarize=summarize, title="Fine-tune",
    function="engine.finetuning:finetune"))
