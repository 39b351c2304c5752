"""`/lm eval` and the data-set card's Evaluate button: a model evaluated on a stored data set,
with its metrics and charts in the status message's thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.blocks import ACTION_EVAL, job_result_blocks
from bot.blocks_base import Block
from bot.grammar import COMMAND, CommandError, check_model, check_ref
from bot.job_requests import (
    Origin,
    button_dataset,
    params_or_error,
    resolve_dataset,
    resolve_model,
)
from bot.kinds.base import (
    JobJSON,
    JobRequest,
    JobSubcommand,
    Presenter,
    register_job_subcommand,
)
from bot.mrkdwn import code
from bot.store import BotStore
from engine.eval_params import EvalParams
from engine.finetune_params import DEFAULT_BASE

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.runtime import BotRuntime

#: Which model tasks can be evaluated on which data set task.
_COMPATIBLE = {"classify": ("classify", "embed"), "chat": ("chat",)}


def check(request: JobRequest) -> None:
    check_model(request.args[0])
    check_ref(request.args[1], "dataset")


async def to_params(store: BotStore, origin: Origin, request: JobRequest
                    ) -> tuple[EvalParams, dict[str, Any]]:
    dataset = await resolve_dataset(store, origin.workspace_id, request.args[1])
    model, task = await resolve_model(store, origin, request.args[0])
    if task is not None and task not in _COMPATIBLE.get(dataset.task, ()):
        raise CommandError(f"{model!r} is a {task} model and {dataset.name!r} a "
                           f"{dataset.task} data set; they don't go together")
    params = params_or_error(EvalParams, model=model, data=dataset.stored_path)
    return params, {"dataset": dataset.name, "model": model}


async def default_model(store: BotStore, workspace_id: int, task: str) -> tuple[str, str]:
    """The model the Evaluate button uses, and how to say which: the promoted one, else the
    task's built-in base model."""
    promoted = await store.promoted(workspace_id, task)
    if promoted:
        return promoted, f"the promoted model {code(promoted)}"
    model = DEFAULT_BASE.get(task, "minilm")
    what = {"classify": "classifier", "chat": "chat model"}.get(task, f"{task} model")
    return model, f"the built-in {code(model)} (no promoted {what})"


def results(job: JobJSON) -> list[Block]:
    return job_result_blocks(job, job.get("result") or {})


def install(app: AsyncApp, rt: BotRuntime) -> None:
    from bot.actions import button_value, origin_of, say_failure, start_from_button
    from bot.auth import checked

    @app.action(ACTION_EVAL, middleware=[checked(ACTION_EVAL)])
    async def evaluate(ack, body, context, respond) -> None:
        await ack()
        origin = origin_of(body, context)
        try:
            dataset = await resolve_dataset(rt.store, origin.workspace_id,
                                            button_dataset(button_value(body)))
            model, which = await default_model(rt.store, origin.workspace_id, dataset.task)
        except CommandError as error:
            await say_failure(respond, error)
            return
        request = JobRequest("eval", args=(model, f"#{dataset.id}"))
        what = f"Evaluation of {which} on {code(dataset.name)}"
        await start_from_button(rt, body, context, respond, what, request)


SUBCOMMAND = register_job_subcommand(JobSubcommand(
    name="eval", kind="evaluate", rank=80, role="trainer", doing="start evaluations",
    description="Evaluate a model on a data set: metrics and charts.",
    examples=(f"{COMMAND} eval tickets-v1 support-tickets-test",),
    positional=("a model", "a dataset"), usage_args=("MODEL", "DATASET"), check=check,
    to_params=to_params,
    queued=lambda request: f":hourglass_flowing_sand: Queuing an evaluation of "
                           f"{code(request.args[0])} on {code(request.args[1])}… "
                           "the metrics appear in this channel.",
    presenter=Presenter(results=results, plots=True), aliases=("evaluate",), audited=True,
    actions=(ACTION_EVAL,), install=install))
