"""Block Kit messages of the bot: pure functions from the engine's and storage's JSON shapes to
lists of blocks, snapshot-tested in `tests/bot/test_blocks.py`.

Every text that comes from a user, a file or a model goes through `bot.mrkdwn`, so no message
can mention `@channel` or forge a link, and every block stays within Slack's limits
(`bot.blocks_base`). Job messages live in `bot.blocks_jobs` and are re-exported here.
"""

from __future__ import annotations

from typing import Any

from bot.blocks_base import (
    Block,
    actions,
    button,
    check_blocks,
    context,
    fit,
    lines_sections,
    number,
    percent,
    progress_bar,
    section,
    text_sections,
    when,
)
from bot.blocks_jobs import (
    ACTION_CANCEL,
    ACTION_PROMOTE,
    ACTIVE,
    job_failed_blocks,
    job_result_blocks,
    job_status_blocks,
    job_title,
    short_error,
    status_text,
)
from bot.grammar import COMMAND, WHO_MAY
from bot.mrkdwn import bold, code, escape, mention, quote, truncate

__all__ = [
    "ACTION_CANCEL", "ACTION_EVAL", "ACTION_FINETUNE", "ACTION_PROMOTE", "access_blocks",
    "chat_reply_blocks", "check_blocks", "dataset_report_blocks", "datasets_blocks",
    "error_blocks", "fallback_text", "job_failed_blocks", "job_result_blocks",
    "job_status_blocks", "jobs_blocks", "models_blocks", "prediction_blocks", "refused_blocks",
]

ACTION_FINETUNE = "lmops_finetune"
ACTION_EVAL = "lmops_eval"
MAX_PREDICTIONS = 15
MAX_OTHER_SCORES = 5
MAX_LABELS_SHOWN = 15
MAX_REPORT_LINES = 10


def _join(*parts: str) -> str:
    return " · ".join(p for p in parts if p)


def _count(n: Any, word: str) -> str:
    return f"{number(n)} {word}{'' if n == 1 else 's'}"


def prediction_blocks(predictions: list[dict[str, Any]], model: str | None = None) -> list[Block]:
    """Classify results: per text its label, confidence (percent and bar), the other labels'
    scores and whether the text was truncated (the `classify` JSON shape)."""
    blocks: list[Block] = []
    quote_limit = 500 if len(predictions) == 1 else 200
    for p in predictions[:MAX_PREDICTIONS]:
        score = p.get("score")
        text = quote(truncate(str(p["text"]), quote_limit)) + "\n" if p.get("text") else ""
        blocks.append(section(f"{text}{bold(p.get('label')) or '_no label_'}  "
                              f"`{progress_bar(score)}`"))
        others = sorted(((k, v) for k, v in (p.get("scores") or {}).items()
                         if k != p.get("label")), key=lambda kv: (-kv[1], kv[0]))
        notes = [_join(*(f"{escape(k)} {percent(v)}" for k, v in others[:MAX_OTHER_SCORES]))]
        if len(others) > MAX_OTHER_SCORES:
            notes[0] += f" · _{len(others) - MAX_OTHER_SCORES} more_"
        if p.get("truncated"):
            notes.append(":scissors: _the text was cut to the model's maximum length_")
        if any(notes):
            blocks.append(context([n for n in notes if n]))
    footer = [f"model {code(model)}"] if model else []
    if len(predictions) > MAX_PREDICTIONS:
        footer.append(f"_{len(predictions) - MAX_PREDICTIONS} more predictions not shown_")
    if not predictions:
        blocks.append(section("_No texts to classify._"))
    if footer:
        blocks.append(context(footer))
    return fit(blocks)


#: The block_id of a chat reply's first section: how the bot finds its replies in a thread.
CHAT_REPLY_BLOCK = "lmops_chat_reply"


def chat_reply_blocks(text: str, model: str | None = None, streaming: bool = False,
                      cut_at: int | None = None, notes: list[str] | tuple[str, ...] = ()
                      ) -> list[Block]:
    """A chat reply (split over several sections when long); `streaming` marks it unfinished,
    `cut_at` says it was cut at that many new tokens, `notes` (escaped mrkdwn) follow the model."""
    body = escape(text).strip() or ("_…_" if streaming else "_(no reply)_")
    if cut_at:
        body += f" … _(cut at {number(cut_at)} tokens; ask me to go on)_"
    lines = [f"model {code(model)}"] if model else []
    if streaming:
        lines.append("_typing…_")
    sections = text_sections(body, max_blocks=20)
    sections[0] = {**sections[0], "block_id": CHAT_REPLY_BLOCK}
    lines += list(notes)
    return fit(sections + ([context(lines)] if lines else []))


def _model_line(m: dict[str, Any]) -> str:
    metrics = m.get("metrics") or {}
    how = " on ".join(code(m[k]) for k in ("method", "base") if m.get(k))
    labels = m.get("labels") or []
    star = ":star: promoted" if m.get("promoted") or m.get("promoted_for") else ""
    return "• " + _join(
        bold(m.get("name")), escape(m.get("task") or ""), how,
        _count(len(labels), "label") if labels else "",
        f"accuracy {percent(metrics['accuracy'])}" if metrics.get("accuracy") is not None else "",
        f"macro-F1 {percent(metrics['macro_f1'])}" if metrics.get("macro_f1") is not None else "",
        f"perplexity {number(metrics['perplexity'])}" if metrics.get("perplexity") else "",
        "built in" if m.get("builtin") else "", star,
    )


def models_blocks(models: list[dict[str, Any]]) -> list[Block]:
    """The model list (the `models` JSON shape; `promoted`/`builtin` flags when known)."""
    if not models:
        return [section("No models yet. Fine-tune one with "
                        f"{code(COMMAND + ' finetune DATASET')}.")]
    lines = [f"*Models* ({len(models)})", *(_model_line(m) for m in models)]
    hint = f"Use one: {code(COMMAND + ' classify model=NAME TEXT')}"
    return fit(lines_sections(lines, max_blocks=45) + [context([hint])])


def _dataset_line(d: dict[str, Any]) -> str:
    report = d.get("validation_report") or {}
    rows = d.get("n_rows", d.get("rows", report.get("n")))
    labels = d.get("labels") or report.get("label_counts") or []
    return "• " + _join(
        bold(d.get("name")) + (f" ({code('#' + str(d['id']))})" if d.get("id") else ""),
        escape(d.get("task") or ""), _count(rows, "row") if rows is not None else "",
        _count(len(labels), "label") if labels else "",
        f"from {mention(d['uploader'])}" if d.get("uploader") else "",
        when(d.get("created") or d.get("created_at")),
    )


def datasets_blocks(datasets: list[dict[str, Any]]) -> list[Block]:
    """The data set list (storage's Dataset rows as dicts)."""
    if not datasets:
        return [section("No data sets yet. Upload a CSV, TSV, JSONL or JSON file in a channel "
                        "with the bot, or in a DM to it.")]
    lines = [f"*Data sets* ({len(datasets)})", *(_dataset_line(d) for d in datasets)]
    hint = f"{code(COMMAND + ' finetune NAME')} · {code(COMMAND + ' eval MODEL NAME')}"
    return fit(lines_sections(lines, max_blocks=45) + [context([hint])])


def _job_line(job: dict[str, Any]) -> str:
    progress = job.get("progress") or {}
    bar = ""
    if job.get("status") == "doing" and progress.get("total_steps"):
        bar = f"`{progress_bar((progress.get('step') or 0) / progress['total_steps'], 8)}`"
    error = escape(short_error(job["error"], 80)) if job.get("status") == "failed" and \
        job.get("error") else ""
    return _join(f"{status_text(job.get('status'))} *{job_title(job)}*", bar, error,
                 mention(job["user_id"]) if job.get("user_id") else "",
                 when(job.get("created")))


def jobs_blocks(jobs: list[dict[str, Any]], hidden: list[str] | None = None) -> list[Block]:
    """The queue (the `jobs` JSON shape), newest first as given; `hidden` names the kinds
    left out (`classification`), which `/lm jobs all` lists too."""
    more = (f"Predictions ({escape(', '.join(hidden))}) are not listed: "
            f"{code(COMMAND + ' jobs all')} shows them too") if hidden else ""
    if not jobs:
        return [section("No jobs yet."), *([context([more])] if more else [])]
    active = sum(1 for j in jobs if j.get("status") in ACTIVE)
    lines = [f"*Jobs* ({active} queued or running)", *(_job_line(j) for j in jobs)]
    hint = f"{code(COMMAND + ' job ID')} for details · {code(COMMAND + ' cancel ID')} to stop one"
    return fit(lines_sections(lines, max_blocks=44) + [context([hint, *([more] if more else [])])])


def _capped(items: list[str], limit: int = MAX_REPORT_LINES) -> list[str]:
    more = [f"_… and {len(items) - limit} more_"] if len(items) > limit else []
    return items[:limit] + more


def dataset_report_blocks(dataset: dict[str, Any], report: dict[str, Any]) -> list[Block]:
    """The answer to an upload: rows, the labels' distribution, problems and warnings (which
    name the rows), and Fine-tune / Evaluate buttons when the data set is usable
    (`report` is `ValidationReport.to_json()`)."""
    name = dataset.get("name") or report.get("source") or "data set"
    ok = report.get("ok", not report.get("problems"))
    n = report.get("n", 0)
    counts = report.get("label_counts") or {}
    summary = _join(_count(n, "row"), f"{number(report.get('usable', n))} usable",
                    _count(len(counts), "label") if counts else "", escape(report.get("task") or ""))
    verdict = ":white_check_mark: Ready to use" if ok else ":warning: Can't be used"
    blocks = [section(f"{verdict}: {bold(name)}\n{summary}")]
    if counts:
        usable = sum(counts.values()) or 1
        lines = [f"`{progress_bar(c / usable, 8)}` {code(label)} {number(c)}"
                 for label, c in counts.items()]
        blocks += lines_sections(["*Labels*", *_capped(lines, MAX_LABELS_SHOWN)], 3)
    for title, items in (("Problems", report.get("problems")),
                         ("Warnings", report.get("warnings"))):
        if items:
            lines = [f"• {escape(item)}" for item in items]
            blocks += lines_sections([f"*{title}*", *_capped(lines)], 3)
    if ok and dataset.get("id") is not None:
        blocks.append(actions([
            # the id with its `#`: a value that no data set name can stand in for
            button("Fine-tune", ACTION_FINETUNE, f"#{dataset['id']}", style="primary"),
            button("Evaluate", ACTION_EVAL, f"#{dataset['id']}"),
        ]))
        ref = str(dataset.get("name") or dataset["id"])
        blocks.append(context([f"or {code(f'{COMMAND} finetune {ref} epochs=3')}"]))
    elif not ok:
        # a file that could not be read at all (empty, binary) has no rows above to fix
        fix = " Fix the rows above and upload the file again." if n else ""
        blocks.append(context([f"Nothing was kept.{fix}"]))
    return fit(blocks)


def access_blocks(roles: Any) -> list[Block]:
    """Who has a role: `roles` is `{user_id: role}` or a list of `{"user_id", "role"}` dicts
    (`"source": "LMOPS_ADMINS"` marks admins set by the environment)."""
    items = ([{"user_id": u, "role": r} for u, r in roles.items()] if isinstance(roles, dict)
             else list(roles))
    lines = []
    for role, title in (("admin", "Admins"), ("trainer", "Trainers")):
        people = [mention(i["user_id"]) + (" _(LMOPS_ADMINS)_" if i.get("source") == "LMOPS_ADMINS"
                                           else "")
                  for i in items if i.get("role") == role]
        lines.append(f"*{title}:* " + (", ".join(people) if people else "_none_"))
    rules = (f"Anyone may classify, chat and list. {WHO_MAY['trainer'].capitalize()} fine-tune, "
             f"evaluate and promote. Admins manage roles: "
             f"{code(COMMAND + ' access grant @user trainer')}")
    return fit(lines_sections(lines, max_blocks=10) + [context([rules])])


def error_blocks(message: str) -> list[Block]:
    """One short error message (escaped; backtick code in it still shows as code)."""
    return [section(f":warning: {escape(truncate(str(message), 2000))}")]


def refused_blocks(action: str, who_may: str) -> list[Block]:
    """A refused action saying who may do it. `who_may` is a role from `bot.commands.ROLES`
    (`"trainer"`) or words (`"the job's owner"`)."""
    who = WHO_MAY.get(who_may, who_may)
    blocks = [section(f":no_entry: Only {escape(who)} may {escape(action)}.")]
    if who_may == "trainer":
        hint = f"An admin can give you the role: {code(COMMAND + ' access grant @you trainer')}"
        blocks.append(context([hint]))
    return blocks


def fallback_text(blocks: list[Block], limit: int = 300) -> str:
    """The notification text of a message: its first section or header text, shortened."""
    for block in blocks:
        text = (block.get("text") or {}).get("text")
        if text:
            return truncate(" ".join(text.split()), limit)
    return "lmops"
