"""How the worker runs each job kind: the same engine functions the CLI calls."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.errors import CancelledError
from engine.jobs import ChatJob, ClassifyJob, JobContext, NoopParams


def run_noop(params: NoopParams, ctx: JobContext) -> dict[str, Any]:
    for step in range(params.steps):
        if ctx.should_cancel():
            raise CancelledError(f"cancelled at step {step}")
        ctx.progress({"step": step + 1, "total_steps": params.steps})
        time.sleep(params.sleep / max(params.steps, 1))
    if not params.steps and params.sleep:
        time.sleep(params.sleep)
    if params.fail:
        raise RuntimeError("this no-op job was asked to fail")
    return {"ok": True}


def run_classify(job: ClassifyJob, ctx: JobContext) -> dict[str, Any]:
    from engine.classification import classify

    predictions = classify(list(job.texts), job.params, settings=ctx.settings, registry=ctx.registry)
    return {"predictions": [p.to_json() for p in predictions]}


def run_chat(job: ChatJob, ctx: JobContext) -> dict[str, Any]:
    from engine.dialogue import chat_stream

    parts: list[str] = []
    last = 0.0
    for chunk in chat_stream(job.messages, job.params, settings=ctx.settings):
        parts.append(chunk)
        if time.monotonic() - last > 0.5:  # the bot streams the partial reply into Slack
            ctx.progress({"partial_reply": "".join(parts)})
            last = time.monotonic()
        if ctx.should_cancel():
            raise CancelledError("cancelled while generating")
    return {"reply": "".join(parts).strip(), "model": job.params.model}


def run_evaluate(params: Any, ctx: JobContext) -> dict[str, Any]:
    from engine.evaluation import evaluate

    if params.out_dir is None:
        params = replace(params, out_dir=ctx.artifacts / "eval")
    return evaluate(params, settings=ctx.settings, registry=ctx.registry)


def run_finetune(params: Any, ctx: JobContext) -> dict[str, Any]:
    """Checkpoints live in the job's folder, so a requeued job resumes where it stopped."""
    from engine.finetuning import finetune, latest_checkpoint

    out = ctx.artifacts / "finetune"
    checkpoints = out / "checkpoints"
    checkpoint = latest_checkpoint(checkpoints)
    resumed_from = int(checkpoint.name.removeprefix("checkpoint-")) if checkpoint else None
    resume = checkpoint is not None
    # a fixed name, so a resumed run registers the same model
    name = params.name or f"{Path(params.data).stem[:24]}-{params.method}-job{ctx.job_id}"
    params = replace(params, resume=resume or params.resume, name=name)

    def report(progress) -> None:
        ctx.progress(progress.to_json())

    result = finetune(params, settings=ctx.settings, registry=ctx.registry, progress=report,
                      should_cancel=ctx.should_cancel, output_dir=out)
    return {**result.to_json(), "resumed_from_step": resumed_from}
