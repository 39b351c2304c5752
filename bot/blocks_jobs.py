"""Block Kit for jobs: the live status message, the result of a fine-tune or evaluation, and the
one-line failure. Pure functions of the `jobs` JSON shape (`id`, `kind`, `status`,
`progress`, `params`, `error`, ...) and the `eval`/`finetune` JSON shapes."""

from __future__ import annotations

import re
from typing import Any

from bot.blocks_base import (
    Block,
    actions,
    button,
    confirm,
    context,
    duration,
    number,
    percent,
    progress_bar,
    section,
)
from bot.mrkdwn import code, escape, truncate
from engine.kinds import all_kinds

ACTION_CANCEL = "lmops_cancel"
ACTION_PROMOTE = "lmops_promote"

STATUS = {
    "todo": (":hourglass_flowing_sand:", "queued"),
    "doing": (":gear:", "running"),
    "succeeded": (":white_check_mark:", "done"),
    "failed": (":x:", "failed"),
    "cancelled": (":no_entry_sign:", "cancelled"),
}
ACTIVE = ("todo", "doing")
# Validation metrics worth showing while training, best first; rates are shown as percents.
_VALIDATION_ORDER = ("accuracy", "macro_f1", "f1", "loss", "perplexity")
_RATES = frozenset({"accuracy", "macro_f1", "weighted_f1", "f1", "rouge_l", "chrf"})


def kind_name(kind: Any) -> str:
    """`Fine-tune`, `Evaluation`, ... for a job kind: its spec's title."""
    spec = all_kinds().get(str(kind))
    return spec.title if spec else escape(str(kind or "job")).replace("_", " ").capitalize()


def status_text(status: Any) -> str:
    """`:gear: running` and the like."""
    emoji, word = STATUS.get(str(status), (":grey_question:", escape(str(status))))
    return f"{emoji} {word}"


def job_title(job: dict[str, Any]) -> str:
    """`Fine-tune #42`: the job's kind and id (mrkdwn)."""
    return f"{kind_name(job.get('kind'))} #{escape(job.get('id', '?'))}"


def job_subject(job: dict[str, Any]) -> str:
    """What the job works on, from its params: `tix-v1` on `tickets` (lora on minilm)."""
    params = job.get("params") or {}
    model = params.get("name") or params.get("model")
    dataset = params.get("dataset_name") or params.get("dataset")
    parts = []
    if model:
        parts.append(code(model))
    if dataset:
        parts.append(("on " if parts else "data set ") + code(dataset))
    how = " on ".join(code(params[k]) for k in ("method", "base") if params.get(k))
    if how:
        parts.append(f"({how})")
    return " ".join(parts)


def _metric(name: str, value: Any) -> str:
    return percent(value) if name in _RATES else number(value)


def job_status_blocks(job: dict[str, Any]) -> list[Block]:
    """The status message of a job, updated as it runs: a progress bar, step, epoch, loss,
    validation metric and ETA, and a Cancel button while it is queued or running."""
    status = str(job.get("status"))
    progress = job.get("progress") or {}
    subject = job_subject(job)
    line = f"{status_text(status)}  *{job_title(job)}*" + (f"  {subject}" if subject else "")
    if status == "doing" and progress.get("stage") == "evaluate":
        line += "  _evaluating_"
    blocks = [section(line)]
    total = progress.get("total_steps")
    step = progress.get("step")
    if status == "doing" and total:
        fraction = (step or 0) / total
        blocks.append(section(f"`{progress_bar(fraction)}`"))
    elif status == "succeeded":
        blocks.append(section(f"`{progress_bar(1.0)}`"))
    fields = []
    if total:
        fields.append(f"*Step*\n{number(step or 0)} / {number(total)}")
    if progress.get("epoch") is not None:
        epochs = progress.get("epochs") or (job.get("params") or {}).get("epochs")
        of = f" / {number(epochs, 3)}" if epochs else ""
        fields.append(f"*Epoch*\n{float(progress['epoch']):.2f}{of}")
    if progress.get("loss") is not None:
        fields.append(f"*Loss*\n{number(progress['loss'])}")
    validation = progress.get("validation") or {}
    shown = [k for k in _VALIDATION_ORDER if validation.get(k) is not None][:2]
    if shown:
        text = " · ".join(f"{k.replace('_', '-')} {_metric(k, validation[k])}" for k in shown)
        fields.append(f"*Validation*\n{escape(text)}")
    if status == "doing" and progress.get("eta_seconds") is not None:
        fields.append(f"*ETA*\n{duration(progress['eta_seconds'])}")
    if (job.get("attempts") or 0) > 1:
        fields.append(f"*Attempt*\n{number(job['attempts'])}")
    if fields:
        blocks.append(section(fields=fields))
    stop = progress.get("stopped_early")
    if stop:  # the bar is full although the steps aren't: say why
        blocks.append(context([f":stop_button: Stopped early at step {number(stop.get('step'))} "
                               f"of {number(stop.get('total_steps'))}: "
                               f"{escape(str(stop.get('reason') or 'no reason given'))}"]))
    if status in ACTIVE:
        if job.get("cancel_requested"):
            blocks.append(context(["_Cancelling at the next step…_"]))
        else:
            dialog = confirm(f"Cancel job #{job.get('id')}?",
                             "It stops at its next step; what it has saved so far is kept.",
                             "Cancel job", "Keep it running")
            blocks.append(actions([button("Cancel", ACTION_CANCEL, job.get("id"), style="danger",
                                          confirm_dialog=dialog)]))
    return blocks


def _label_lines(per_label: dict[str, dict[str, Any]]) -> list[str]:
    ranked = sorted(per_label.items(), key=lambda kv: (-(kv[1].get("f1") or 0), kv[0]))

    def line(label: str, m: dict[str, Any]) -> str:
        return (f"• {code(label)} F1 {number(m.get('f1'), 3)} (precision "
                f"{number(m.get('precision'), 3)}, recall {number(m.get('recall'), 3)}, "
                f"n {number(m.get('support'))})")

    if len(ranked) <= 6:
        return ["*Per label*", *(line(k, v) for k, v in ranked)]
    return ["*Best labels by F1*", *(line(k, v) for k, v in ranked[:3]),
            "*Worst labels by F1*", *(line(k, v) for k, v in ranked[-3:])]


def job_result_blocks(job: dict[str, Any], metrics: dict[str, Any],
                      model: str | None = None) -> list[Block]:
    """The end of a fine-tune or evaluation: metrics as fields and the best and worst labels
    by F1. `metrics` is the eval JSON, or the finetune JSON (which holds it under `metrics`)."""
    inner = metrics.get("metrics") if isinstance(metrics.get("metrics"), dict) else metrics
    params = job.get("params") or {}
    model = model or metrics.get("name") or (job.get("result") or {}).get("name") \
        or params.get("name") or params.get("model")
    title = f":white_check_mark: *{job_title(job)} finished*"
    blocks = [section(title + (f": {code(model)}" if model else ""))]
    candidates = [
        ("Examples", inner.get("n"), number), ("Accuracy", inner.get("accuracy"), percent),
        ("Macro-F1", inner.get("macro_f1"), percent),
        ("Weighted F1", inner.get("weighted_f1"), percent),
        ("Loss", inner.get("loss"), number), ("Perplexity", inner.get("perplexity"), number),
        ("ROUGE-L", inner.get("rouge_l"), percent), ("chrF", inner.get("chrf"), percent),
        ("Training time", metrics.get("train_seconds"), duration),
        ("Samples/s", metrics.get("samples_per_second"), lambda v: number(v, 3)),
    ]
    fields = [f"*{name}*\n{fmt(value)}" for name, value, fmt in candidates if value is not None]
    if fields:
        blocks.append(section(fields=fields))
    if inner.get("per_label"):
        blocks.append(section("\n".join(_label_lines(inner["per_label"]))))
    return blocks


def promote_blocks(model: str, task: str | None) -> list[Block]:
    """A Promote button for a new model, and how to try it."""
    dialog = confirm(f"Promote {model}?", f"New {task or 'predictions'} in this workspace "
                     f"will use {model} by default.", "Promote", "Not now")
    verb = "chat" if task == "chat" else "classify"
    return [actions([button("Promote", ACTION_PROMOTE, model, style="primary",
                            confirm_dialog=dialog)]),
            context([f"Try it: {code(f'/lm {verb} model={model} TEXT')}"])]


_SEG = r"[^\s/\\'\"`:;,()<>\[\]{}|*?]+"  # one part of a path (no separator, quote or space)
#: An absolute path: POSIX (two parts at least, so `/lm` stays), `~/...`, a `file://` URL,
#: `C:\...` or `C:/...`, and `\\server\share\...`; not a URL's path or `org/model`.
_ABSOLUTE_PATH = re.compile(
    rf"(?:file://|(?<![\w.~:/\\-]))(?:~/(?:{_SEG}/)*(?:{_SEG})?|/(?:{_SEG}/)+(?:{_SEG})?)"
    rf"|(?<!\w)[A-Za-z]:[\\/](?:{_SEG}[\\/])*(?:{_SEG})?"
    rf"|\\\\{_SEG}(?:\\{_SEG})+")


def _file_name(match: re.Match[str]) -> str:
    """A path's file name (`data.csv`), else `<path>` (a folder's name may be a user's)."""
    path = match.group(0)
    name = re.split(r"[\\/]", path)[-1]
    stripped = name.rstrip(".")
    dot = stripped.rfind(".")
    return (stripped if dot > 0 else "<path>") + name[len(stripped):]


def hide_paths(text: str) -> str:
    """`text` with each absolute path replaced by its file name or `<path>`: the server's
    folders are nobody's business in Slack."""
    return _ABSOLUTE_PATH.sub(_file_name, text)


def short_error(error: Any, limit: int = 300) -> str:
    """The line of an error worth showing: the last line of a traceback, else the first,
    with no server path in it (`hide_paths`)."""
    lines = [line.strip() for line in str(error or "").strip().splitlines() if line.strip()]
    if not lines:
        return "unknown error"
    text = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    return truncate(hide_paths(text), limit)


def job_failed_blocks(job: dict[str, Any], error: Any = None) -> list[Block]:
    """One short message saying why a job failed."""
    reason = short_error(error if error is not None else job.get("error"))
    return [section(f":x: *{job_title(job)} failed*: {escape(reason)}")]
