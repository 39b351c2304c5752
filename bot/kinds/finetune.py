"""`/lm finetune` and the data-set card's Fine-tune button: a fine-tune of a stored data set,
with a live status message, and its metrics, charts and a Promote button in the thread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.blocks import ACTION_FINETUNE, job_result_blocks
from bot.blocks_base import Block
from bot.blocks_jobs import promote_blocks
from bot.grammar import COMMAND, CommandError, check_model, check_ref, fail
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
from engine.finetune_params import FinetuneParams
from engine.registry import validate_model_name
from storage import model_records

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.runtime import BotRuntime


def check(request: JobRequest) -> None:
    check_ref(request.args[0], "dataset")
    check_model(request.option("base"), "base")
    if request.option("name") is not None:
        try:
            validate_model_name(request.option("name"))
        except ValueError as error:
            fail(str(error))
    # the options' values, checked now (the params are built once the data set is known)
    params_or_error(FinetuneParams, data="<dataset>", **request.given)


async def to_params(store: BotStore, origin: Origin, request: JobRequest
                    ) -> tuple[FinetuneParams, dict[str, Any]]:
    dataset = await resolve_dataset(store, origin.workspace_id, request.args[0])
    task, base, name = request.option("task"), request.option("base"), request.option("name")
    if task and task != dataset.task:
        raise CommandError(f"data set {dataset.name!r} is a {dataset.task} data set, so "
                           f"task={task} can't train on it")
    if base:
        base, base_task = await resolve_model(store, origin, base)
        if base_task == "chat" and dataset.task != "chat":
            raise CommandError(f"{base!r} is a chat model; a classify data set needs an encoder "
                               "base such as minilm")
    if name and await store.run(model_records.find_model, workspace_id=origin.workspace_id,
                                ref=name, bare_ids=False):
        raise CommandError(f"a model named {name!r} exists already; choose another name=")
    params = params_or_error(FinetuneParams, **{"task": dataset.task, **request.given,
                                                "data": dataset.stored_path})
    return params, {"dataset": dataset.name}


def results(job: JobJSON) -> list[Block]:
    result = job.get("result") or {}
    blocks = job_result_blocks(job, result)
    if result.get("name"):
        blocks += promote_blocks(result["name"], result.get("task"))
    return blocks


def install(app: AsyncApp, rt: BotRuntime) -> None:
    from bot.actions import button_value, say_failure, start_from_button
    from bot.auth import checked

    @app.action(ACTION_FINETUNE, middleware=[checked(ACTION_FINETUNE)])
    async def finetune(ack, body, context, respond) -> None:
        await ack()
        try:
            ref = button_dataset(button_value(body))
        except CommandError as error:
            await say_failure(respond, error)
            return
        await start_from_button(rt, body, context, respond, "Fine-tune",
                                JobRequest("finetune", args=(ref,)))


SUBCOMMAND = register_job_subcommand(JobSubcommand(
    name="finetune", kind="finetune", rank=70, role="trainer", doing="start fine-tunes",
    description="Fine-tune a model on a data set; progress and results are posted in the "
                "channel.",
    examples=(f"{COMMAND} finetune support-tickets",
              f"{COMMAND} finetune support-tickets method=lora epochs=3 name=tickets-v1",
              f"{COMMAND} finetune faq-dialogues task=chat base=smollm2 lr=5e-4"),
    options=("task", "base", "method", "epochs", "lr", "name"),
    positional=("a dataset",), usage_args=("DATASET",), check=check, to_params=to_params,
    queued=lambda request: f":hourglass_flowing_sand: Queuing a fine-tune on "
                           f"{code(request.args[0])}… its progress appears in "
                           "this channel.",
    presenter=Presenter(results=results, plots=True), aliases=("fine-tune", "train"),
    audited=True, actions=(ACTION_FINETUNE,), install=install))
