"""bot.blocks / bot.blocks_jobs / bot.help: snapshot tests of every message, Slack's limits, and
hostile text from users, files and models never turning into mentions or links.

Snapshots live in tests/bot/snapshots/NAME.json; `UPDATE_SNAPSHOTS=1 pytest tests/bot` rewrites
them (look at the diff before committing it).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from bot.blocks import (
    access_blocks,
    chat_reply_blocks,
    check_blocks,
    dataset_report_blocks,
    datasets_blocks,
    error_blocks,
    fallback_text,
    job_failed_blocks,
    job_result_blocks,
    job_status_blocks,
    jobs_blocks,
    models_blocks,
    prediction_blocks,
    refused_blocks,
)
from bot.blocks_base import (
    MAX_BLOCKS,
    actions,
    button,
    duration,
    fit,
    percent,
    progress_bar,
    section,
    text_sections,
)
from bot.commands import SUBCOMMANDS
from bot.kinds import presenter_for
from bot.help import help_blocks, help_text

SNAPSHOTS = Path(__file__).parent / "snapshots"
CREATED = "2025-03-14T09:26:53+00:00"

# --- sample data (the engine's and storage's JSON shapes) ---------------------------------------

PREDICTION = {"text": "The checkout page keeps crashing", "label": "bug", "score": 0.912,
              "scores": {"bug": 0.912, "question": 0.061, "feature": 0.027}, "truncated": False}
SENTIMENT = [
    {"text": "Great support, thanks!", "label": "positive", "score": 0.97,
     "scores": {"positive": 0.97, "neutral": 0.02, "negative": 0.01}, "truncated": False},
    {"text": "meh " * 200, "label": "neutral", "score": 0.48,
     "scores": {"positive": 0.2, "neutral": 0.48, "negative": 0.32}, "truncated": True},
]
MODELS = [
    {"name": "minilm", "task": "embed", "base": "sentence-transformers/all-MiniLM-L6-v2",
     "method": None, "path": "/site/minilm", "labels": None, "metrics": {}, "builtin": True},
    {"name": "sentiment", "task": "classify", "base": "minilm", "method": "lora",
     "path": "/x", "labels": ["negative", "neutral", "positive"],
     "metrics": {"accuracy": 0.81, "macro_f1": 0.78}, "builtin": True},
    {"name": "tix-v1", "task": "classify", "base": "minilm", "method": "lora", "path": "/y",
     "labels": ["bug", "feature", "question"], "metrics": {"accuracy": 0.9, "macro_f1": 0.88},
     "created": CREATED, "promoted": True},
    {"name": "faq-bot", "task": "chat", "base": "smollm2", "method": "ia3", "path": "/z",
     "labels": None, "metrics": {"perplexity": 12.345}},
]
DATASETS = [
    {"id": 3, "name": "support-tickets", "task": "classify", "n_rows": 1234,
     "file_name": "tickets.csv", "uploader": "U0ALICE1", "created_at": CREATED,
     "validation_report": {"label_counts": {"bug": 600, "feature": 400, "question": 234}}},
    {"id": 4, "name": "faq-dialogues", "task": "chat", "n_rows": 87, "uploader": None,
     "created_at": CREATED},
]
FINETUNE_PARAMS = {"dataset": "support-tickets", "name": "tix-v1", "base": "minilm",
                   "method": "lora", "epochs": 6}
PROGRESS = {"step": 520, "total_steps": 1000, "epoch": 3.12, "loss": 0.43219,
            "validation": {"accuracy": 0.8123, "loss": 0.5012}, "eta_seconds": 200.4,
            "stage": "train"}


def job(**fields: Any) -> dict[str, Any]:
    base = {"id": 42, "kind": "finetune", "status": "doing", "attempts": 1, "progress": {},
            "error": None, "created": CREATED, "params": FINETUNE_PARAMS, "user_id": "U0ALICE1"}
    return {**base, **fields}


PER_LABEL = {label: {"precision": p, "recall": r, "f1": f, "support": s}
             for label, p, r, f, s in [
                 ("bug", 0.93, 0.95, 0.94, 60), ("feature", 0.88, 0.84, 0.86, 40),
                 ("question", 0.8, 0.77, 0.785, 23), ("billing", 0.97, 0.99, 0.98, 31),
                 ("login", 0.5, 0.4, 0.444, 10), ("other", 0.3, 0.2, 0.24, 5),
                 ("praise", 0.9, 0.9, 0.9, 12)]}
EVAL_CLASSIFY = {"n": 181, "accuracy": 0.8729, "macro_f1": 0.7378, "weighted_f1": 0.86,
                 "loss": 0.41234, "per_label": PER_LABEL,
                 "confusion_matrix": {"labels": [], "matrix": []}, "plots": {}}
FINETUNE_RESULT = {"name": "tix-v1", "path": "/models/tix-v1", "task": "classify",
                   "base": "minilm", "method": "lora", "metrics": EVAL_CLASSIFY,
                   "train_seconds": 754.2, "samples_per_second": 41.37}
EVAL_CHAT = {"n": 32, "loss": 2.1, "perplexity": 8.166, "rouge_l": 0.3141, "plots": {}}
REPORT_OK = {"source": "tickets.csv", "task": "classify", "n": 1240, "usable": 1234, "ok": True,
             "label_counts": {"bug": 600, "feature": 400, "question": 234},
             "problems": [], "warnings": [
                 "4 empty rows (no text or no label), skipped: rows 7, 19, 88, 301",
                 "2 duplicate rows, skipped: rows 45 (same as 12), 990 (same as 3)"]}
REPORT_BAD = {"source": "one-label.csv", "task": "classify", "n": 10, "usable": 10, "ok": False,
              "label_counts": {"bug": 10},
              "problems": ["only one label ('bug', 10 rows); a classifier needs at least two"],
              "warnings": []}

CASES: dict[str, Any] = {
    "prediction_one": lambda: prediction_blocks([PREDICTION]),
    "prediction_many": lambda: prediction_blocks(SENTIMENT, model="sentiment"),
    "prediction_none": lambda: prediction_blocks([]),
    "chat_reply": lambda: chat_reply_blocks(
        "To reset your password, open *Settings* → _Security_ and click `Reset`.", "smollm2"),
    "chat_streaming": lambda: chat_reply_blocks("To reset your", "smollm2", streaming=True),
    "chat_streaming_empty": lambda: chat_reply_blocks("", "smollm2", streaming=True),
    "models": lambda: models_blocks(MODELS),
    "models_empty": lambda: models_blocks([]),
    "datasets": lambda: datasets_blocks(DATASETS),
    "datasets_empty": lambda: datasets_blocks([]),
    "jobs": lambda: jobs_blocks([
        job(progress=PROGRESS),
        job(id=41, kind="evaluate", status="todo", params={"model": "tix-v1", "dataset": "t"}),
        job(id=40, kind="classify", status="succeeded", params={}, user_id=None),
        job(id=39, status="failed", error="DataError: only one label ('bug')"),
        job(id=38, status="cancelled"),
    ]),
    "jobs_empty": lambda: jobs_blocks([]),
    "jobs_long_only": lambda: jobs_blocks(
        [job(progress=PROGRESS), job(id=38, status="cancelled")],
        hidden=["classification", "chat reply"]),
    "jobs_long_only_empty": lambda: jobs_blocks([], hidden=["classification", "chat reply"]),
    "job_status_queued": lambda: job_status_blocks(job(status="todo")),
    "job_status_running": lambda: job_status_blocks(job(progress=PROGRESS)),
    "job_status_retry": lambda: job_status_blocks(job(progress=PROGRESS, attempts=2)),
    "job_status_evaluating": lambda: job_status_blocks(
        job(progress={**PROGRESS, "step": 1000, "stage": "evaluate", "eta_seconds": 0})),
    "job_status_cancelling": lambda: job_status_blocks(job(progress=PROGRESS,
                                                           cancel_requested=True)),
    "job_status_succeeded": lambda: job_status_blocks(
        job(status="succeeded", progress={**PROGRESS, "step": 1000, "eta_seconds": 0})),
    "job_status_cancelled": lambda: job_status_blocks(job(status="cancelled", progress=PROGRESS)),
    "job_status_stopped_early": lambda: job_status_blocks(job(status="succeeded", progress={
        **PROGRESS, "step": 12, "total_steps": 16, "epochs": 4.0, "stage": "stopped",
        "stopped_early": {"step": 12, "total_steps": 16,
                          "reason": "validation loss stopped improving for 2 evaluations"}})),
    "job_result_finetune": lambda: presenter_for("finetune").results(
        job(status="succeeded", result=FINETUNE_RESULT)),
    "job_result_eval_classify": lambda: job_result_blocks(
        job(kind="evaluate", status="succeeded", params={"model": "tix-v1", "dataset": "t"}),
        {**EVAL_CLASSIFY, "per_label": dict(list(PER_LABEL.items())[:3])}),
    "job_result_eval_chat": lambda: job_result_blocks(
        job(kind="evaluate", status="succeeded", params={"model": "faq-bot"}), EVAL_CHAT),
    "job_failed": lambda: job_failed_blocks(job(status="failed"),
                                            "DataError: only one label ('bug')"),
    "job_failed_traceback": lambda: job_failed_blocks(job(status="failed", error=(
        "Traceback (most recent call last):\n  File \"x.py\", line 1\n"
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"))),
    "dataset_report_ok": lambda: dataset_report_blocks(DATASETS[0], REPORT_OK),
    "dataset_report_refused": lambda: dataset_report_blocks({"name": "one-label"}, REPORT_BAD),
    "access": lambda: access_blocks([
        {"user_id": "U0ADMIN1", "role": "admin", "source": "LMOPS_ADMINS"},
        {"user_id": "U0ALICE1", "role": "trainer"}, {"user_id": "U0BOB123", "role": "trainer"}]),
    "access_empty": lambda: access_blocks({}),
    "error": lambda: error_blocks("epochs must be a number, not 'abc'"),
    "refused_trainer": lambda: refused_blocks("fine-tune", "trainer"),
    "refused_owner": lambda: refused_blocks("cancel job #42", "owner-or-admin"),
    "help": lambda: help_blocks(),
    "help_finetune": lambda: help_blocks("finetune"),
    "help_access": lambda: help_blocks("access"),
}


def assert_snapshot(name: str, blocks: list[dict[str, Any]]) -> None:
    path = SNAPSHOTS / f"{name}.json"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(blocks, indent=2, ensure_ascii=False) + "\n")
        return
    assert path.exists(), f"no snapshot {path.name}: run UPDATE_SNAPSHOTS=1 pytest {__file__}"
    assert blocks == json.loads(path.read_text()), f"{name} differs from {path}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_snapshot(name):
    blocks = CASES[name]()
    assert check_blocks(blocks) == []
    json.dumps(blocks)
    assert_snapshot(name, blocks)


def test_no_stale_snapshots():
    assert {p.stem for p in SNAPSHOTS.glob("*.json")} <= set(CASES)


# --- buttons ------------------------------------------------------------------------------------


def buttons(blocks):
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def test_cancel_button_only_while_queued_or_running():
    for status in ("todo", "doing"):
        (cancel,) = buttons(job_status_blocks(job(status=status)))
        assert (cancel["action_id"], cancel["value"]) == ("lmops_cancel", "42")
    for status in ("succeeded", "failed", "cancelled"):
        assert buttons(job_status_blocks(job(status=status))) == []
    assert buttons(job_status_blocks(job(cancel_requested=True))) == []


def test_promote_button_for_finetunes_only():
    finished = job(status="succeeded", result=FINETUNE_RESULT)
    (promote,) = buttons(presenter_for("finetune").results(finished))
    assert (promote["action_id"], promote["value"]) == ("lmops_promote", "tix-v1")
    evaluation = job(kind="evaluate", params={"model": "tix-v1"}, result=EVAL_CLASSIFY)
    assert buttons(presenter_for("evaluate").results(evaluation)) == []


def test_dataset_buttons_carry_the_dataset_id():
    found = {b["action_id"]: b["value"] for b in
             buttons(dataset_report_blocks(DATASETS[0], REPORT_OK))}
    assert found == {"lmops_finetune": "#3", "lmops_eval": "#3"}  # an id, never a name
    assert buttons(dataset_report_blocks({"name": "x", "id": 9}, REPORT_BAD)) == []


def test_best_and_worst_labels():
    text = json.dumps(job_result_blocks(job(), FINETUNE_RESULT))
    assert text.index("billing") < text.index("Worst") < text.index("other")
    assert "feature" not in text  # the middle of 7 labels is left out


# --- hostile text --------------------------------------------------------------------------------

EVIL = "<!channel> @here <@U0EVIL12> <https://evil.example|click> &lt;!here&gt; ```x``` @everyone"


def mrkdwn_texts(node: Any) -> list[str]:
    if isinstance(node, list):
        return [t for item in node for t in mrkdwn_texts(item)]
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") == "mrkdwn" else []
        return own + [t for key, v in node.items() if key != "text" or not own
                      for t in mrkdwn_texts(v)]
    return []


def evil_cases() -> dict[str, list[dict[str, Any]]]:
    evil_scores = {EVIL: 0.5, "ok": 0.3, EVIL + "2": 0.2}
    evil_job = job(id=EVIL, kind=EVIL, status=EVIL, error=EVIL,
                   params={"name": EVIL, "dataset": EVIL, "method": EVIL, "base": EVIL},
                   progress={"step": 1, "total_steps": 2, "validation": {"accuracy": 0.5}},
                   user_id=EVIL)
    return {
        "prediction": prediction_blocks([{"text": EVIL, "label": EVIL, "score": 0.5,
                                          "scores": evil_scores, "truncated": True}], EVIL),
        "chat": chat_reply_blocks(EVIL, EVIL),
        "models": models_blocks([{"name": EVIL, "task": EVIL, "base": EVIL, "method": EVIL,
                                  "labels": [EVIL], "metrics": {}}]),
        "datasets": datasets_blocks([{"id": EVIL, "name": EVIL, "task": EVIL, "n_rows": 3,
                                      "uploader": EVIL, "created_at": EVIL}]),
        "jobs": jobs_blocks([evil_job, job(status="failed", error=EVIL)]),
        "status": job_status_blocks(evil_job),
        "status_running": job_status_blocks(job(params={"name": EVIL, "dataset": EVIL})),
        "result": job_result_blocks(job(params={"name": EVIL}), {
            **EVAL_CLASSIFY, "per_label": {EVIL: PER_LABEL["bug"]}}),
        "failed": job_failed_blocks(evil_job, EVIL),
        "report": dataset_report_blocks({"id": 1, "name": EVIL}, {
            **REPORT_OK, "label_counts": {EVIL: 3, "b": 2}, "problems": [EVIL],
            "warnings": [EVIL]}),
        "access": access_blocks([{"user_id": EVIL, "role": "admin"}]),
        "error": error_blocks(EVIL),
        "refused": refused_blocks(EVIL, EVIL),
    }


@pytest.mark.parametrize("name", sorted(evil_cases()))
def test_hostile_text_never_mentions_or_links(name):
    blocks = evil_cases()[name]
    assert check_blocks(blocks) == []
    for text in mrkdwn_texts(blocks):
        for markup in re.findall(r"<[^>]*>?", text):
            # The only markup the bot writes itself: real user mentions and dates.
            assert re.fullmatch(r"<@U0(ALICE1|ADMIN1|BOB123)>|<!date\^\d+\^[^|<>]*\|[^<>]*>",
                                markup), (name, text)
        assert not re.search(r"@(channel|here|everyone)\b", text), (name, text)
        assert "U0EVIL12>" not in text


# --- Slack's limits ------------------------------------------------------------------------------


def test_huge_inputs_stay_within_limits():
    labels = {f"label-{i}": 1 / 500 for i in range(500)}
    many = [dict(PREDICTION, text="x" * 5000, scores=labels) for _ in range(100)]
    cases = [
        prediction_blocks(many, model="m" * 500),
        chat_reply_blocks(("word " * 700 + "\n") * 40 + "y" * 9000, "smollm2"),
        models_blocks([dict(MODELS[1], name=f"model-{i}" * 10) for i in range(400)]),
        datasets_blocks([dict(DATASETS[0], name="d" * 300, id=i) for i in range(400)]),
        jobs_blocks([job(id=i, progress=PROGRESS) for i in range(1000)]),
        job_result_blocks(job(), {**FINETUNE_RESULT, "metrics": {
            **EVAL_CLASSIFY, "per_label": {f"l{i}" * 300: PER_LABEL["bug"] for i in range(50)}}}),
        job_failed_blocks(job(), "e" * 10000),
        dataset_report_blocks({"id": 1, "name": "n" * 400}, {
            **REPORT_OK, "label_counts": {f"label-{i}" * 20: i for i in range(300)},
            "warnings": ["w" * 5000] * 50, "problems": ["p" * 3000] * 30}),
        access_blocks([{"user_id": f"U{i:08d}", "role": "trainer"} for i in range(1000)]),
        error_blocks("e" * 10000),
        help_blocks(),
    ]
    for blocks in cases:
        assert check_blocks(blocks) == []
        assert len(blocks) <= MAX_BLOCKS
    assert "more predictions not shown" in json.dumps(cases[0])


def test_fit_and_text_sections():
    blocks = fit([section(str(i)) for i in range(80)])
    assert len(blocks) == 50 and "31 more not shown" in json.dumps(blocks[-1])
    assert fit([section("a")]) == [section("a")]
    parts = text_sections("line\n" * 2000)
    assert all(len(p["text"]["text"]) <= 3000 for p in parts) and len(parts) == 4
    assert len(text_sections("z" * 10000)) == 4


def test_check_blocks_reports_what_slack_refuses():
    bad = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}},
           {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11},
           {"type": "actions", "elements": [{"type": "button", "text": {
               "type": "plain_text", "text": "b"}}]},
           {"type": "bogus"}] + [{"type": "divider"}] * 50
    problems = check_blocks(bad)
    assert any("3001" in p for p in problems) and any("11 fields" in p for p in problems)
    assert any("no action_id" in p for p in problems) and any("no value" in p for p in problems)
    assert any("bogus" in p for p in problems) and any("54 blocks" in p for p in problems)
    with pytest.raises(ValueError):
        button("x", "a", "")
    assert len(actions([button("b", f"a{i}", i) for i in range(30)])["elements"]) == 25


# --- formatters and help -----------------------------------------------------------------------


def test_formatters():
    assert progress_bar(0.52, 8) == "▓▓▓▓░░░░ 52%"
    assert progress_bar(0.999) == "▓▓▓▓▓▓▓▓▓░ 99%"
    assert progress_bar(1.0) == "▓▓▓▓▓▓▓▓▓▓ 100%" and progress_bar(None) == "░" * 10 + " 0%"
    assert progress_bar(7) == "▓" * 10 + " 100%"
    assert progress_bar(0.426) == "▓▓▓▓░░░░░░ 43%"  # the number is percent()'s


def test_percent_is_written_one_way():
    """Whole percents everywhere (issue 12: "76%" beside "100.0%"): 100% only for all of it,
    <1% for a little more than nothing."""
    values = (0.5, 0.7599, 0.125, 0.996, 0.9999, 1.0, 0.004, 0.0, None, float("nan"))
    assert [percent(v) for v in values] == \
        ["50%", "76%", "13%", "99%", "99%", "100%", "<1%", "0%", "–", "–"]
    shown = json.dumps([CASES[name]() for name in CASES])
    assert not re.search(r"\d\.\d%", shown), "a percent with a decimal"
    assert [duration(v) for v in (None, 5, 200, 3900, 200000)] == \
        ["–", "5s", "3m 20s", "1h 05m", "2d 7h"]


def test_help_lists_every_registered_subcommand():
    text = json.dumps(help_blocks())
    for name, sub in SUBCOMMANDS.items():
        if name != "help":
            assert f"/lm {sub.usage}" in text and sub.example in text
    assert "/lm access grant @alice trainer" in help_text("access")
    with pytest.raises(ValueError):
        help_blocks("nope")


def test_fallback_text():
    assert fallback_text(error_blocks("bad <!channel>")) == ":warning: bad &lt;!channel&gt;"
    assert fallback_text(help_blocks()).startswith("/lm")


def test_an_early_stop_says_where_and_why():
    progress = {**PROGRESS, "step": 12, "total_steps": 16, "stage": "stopped",
                "stopped_early": {"step": 12, "total_steps": 16,
                                  "reason": "validation loss stopped improving for 2 evaluations"}}
    text = json.dumps(job_status_blocks(job(status="succeeded", progress=progress)))
    assert "Stopped early at step 12 of 16: validation loss stopped improving" in text
    assert "Stopped early" not in json.dumps(job_status_blocks(job(status="succeeded",
                                                                   progress=PROGRESS)))
