"""`/lm classify`: one text labelled by the named model, zero-shot labels, or the workspace's
promoted classifier; the prediction is posted when it is ready."""

from __future__ import annotations

from typing import Any

from bot.blocks import job_failed_blocks, job_status_blocks, prediction_blocks
from bot.blocks_base import Block, context, fit
from bot.grammar import COMMAND, CommandError, check_model
from bot.job_requests import Origin, params_or_error, resolve_model
from bot.kinds.base import (
    JobJSON,
    JobRequest,
    JobSubcommand,
    Presenter,
    register_job_subcommand,
)
from bot.mrkdwn import mention
from bot.store import BotStore
from engine.classify_params import ClassifyParams
from engine.kinds.classify import ClassifyJob


def check(request: JobRequest) -> None:
    check_model(request.option("model"))
    if request.option("labels") is not None:
        params_or_error(ClassifyParams, labels=request.option("labels"))


async def to_params(store: BotStore, origin: Origin, request: JobRequest
                    ) -> tuple[ClassifyJob, dict[str, Any]]:
    model, labels = request.option("model"), request.option("labels")
    if model:
        model, task = await resolve_model(store, origin, model)
        if task == "chat":
            raise CommandError(f"{model!r} is a chat model; try `/lm chat model={model} ...`")
        if task == "embed" and not labels:
            raise CommandError(f"{model!r} is an encoder: give labels=a,b,c for zero-shot "
                               "classification, or fine-tune it first")
    elif not labels:
        model = await store.promoted(origin.workspace_id, "classify")
    return params_or_error(ClassifyJob, texts=(request.text,), model=model, labels=labels), {}


def message(job: JobJSON) -> list[Block]:
    """The prediction, or why there is none."""
    if job.get("status") == "failed":
        return job_failed_blocks(job)
    if job.get("status") != "succeeded":
        return job_status_blocks(job)
    result = job.get("result") or {}
    blocks = prediction_blocks(result.get("predictions") or [], model=result.get("model"))
    if job.get("user_id"):
        blocks = fit([*blocks, context([f"asked by {mention(job['user_id'])}"])])
    return blocks


SUBCOMMAND = register_job_subcommand(JobSubcommand(
    name="classify", kind="classify", rank=10,
    description="Label a text: the label, its confidence and the other labels' scores. Without "
                "a model, the workspace's promoted classifier; with labels=, zero-shot with any "
                "label names.",
    examples=(f"{COMMAND} classify The checkout page keeps crashing",
              f"{COMMAND} classify labels=bug,feature,question Can you add dark mode?",
              f'{COMMAND} classify model=sentiment "Great support, thanks!"'),
    options=("model", "labels"), free_text="TEXT",
    missing_text="classify needs a text, like `/lm classify I love this product`",
    check=check, to_params=to_params,
    queued=lambda request: ":hourglass_flowing_sand: Classifying… the answer appears in this "
                           "channel.",
    presenter=Presenter(live=False, message=message)))
