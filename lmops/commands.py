"""The CLI's command handlers: each turns parsed arguments into one engine call and prints it."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from engine.csv_safety import safe_cell
from engine.errors import EngineError
from engine.settings import get_settings
from lmops.output import fmt_score, print_json, print_table, shorten
from lmops.params_args import given_params
from lmops.wiring import local

if TYPE_CHECKING:
    from engine.data_formats import Table

#: The params fields each command offers as flags (`--batch-size` is `batch_size`).
CLASSIFY_OPTIONS = ("model", "labels", "batch_size", "device")
CHAT_OPTIONS = ("model", "max_new_tokens", "temperature", "top_p", "system", "device")
EVAL_OPTIONS = ("model", "data", "labels", "out_dir", "batch_size", "device")
FINETUNE_OPTIONS = ("data", "eval_data", "task", "base", "method", "epochs", "lr", "batch_size",
                    "max_length", "max_steps", "gradient_checkpointing", "name", "resume", "merge",
                    "device")


def quiet_libraries(*, verbose: bool) -> None:
    """Keep library chatter (weight-loading reports and bars) off the terminal unless -v."""
    if verbose:
        return
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore")


def describe_error(exc: BaseException) -> str:
    """One line for the user: our own errors as they are, others with their type."""
    if isinstance(exc, (EngineError, ValueError)):
        return str(exc).strip() or type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return f"no such file: {exc.filename}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} ({getattr(exc, 'filename', '') or ''})".strip()
    return f"{type(exc).__name__}: {exc}"


def models(args: argparse.Namespace) -> int:
    specs = local().registry.list()
    if args.json:
        print_json([s.to_json() for s in specs])
        return 0
    rows = [(s.name, s.task, s.method or ("built-in" if s.builtin else "-"), s.base or "-",
             fmt_score((s.metrics or {}).get("accuracy")), s.created or "-") for s in specs]
    print_table(rows, ["name", "task", "method", "base", "accuracy", "created"])
    return 0


def classify(args: argparse.Namespace) -> int:
    import engine
    from engine.classification import ClassifyParams

    params = ClassifyParams(**given_params(args, ClassifyParams, CLASSIFY_OPTIONS),
                            quantize=True if args.fast else False if args.exact else None)
    texts, rows, kept = _classify_inputs(args)
    ctx = local()
    default = None if params.model or params.labels else _promoted(ctx, "classify")
    predictions = engine.classify(texts, params, settings=ctx.settings, registry=ctx.registry,
                                  default_model=default)
    if args.file and not args.json:
        out = Path(args.file + ".predictions.csv")
        _write_predictions(out, rows, predictions, kept)
        many = "prediction" if len(predictions) == 1 else "predictions"
        print(f"{len(predictions)} {many} written to {out}", file=sys.stderr)
        return 0
    if args.json:
        print_json([p.to_json() for p in predictions])
        return 0
    table = [(p.label, fmt_score(p.score), ("[truncated] " if p.truncated else "") + shorten(p.text))
             for p in predictions]
    print_table(table, ["label", "score", "text"])
    return 0


def _classify_inputs(args: argparse.Namespace
                     ) -> tuple[list[str], list[int], dict[str, dict[int, str]]]:
    """Texts and their rows, and the input's label columns (`label`, `category`, ...: each
    one's cells by row) when a `--file` has any: the predictions file keeps them as they were,
    beside `predicted_label`."""
    if not args.file or args.texts:
        texts, rows, _ = _text_inputs(args.texts, args.file, what="classify")
        return texts, rows, {}
    from engine.data import LABEL_NAMES, detect_columns, read_table

    table = read_table(Path(args.file))
    texts, rows, _ = _text_inputs([], table, what="classify")
    column = detect_columns(table, require_label=False).text
    given = [c for c in table.columns if c.strip().lower() in LABEL_NAMES and c != column]
    return texts, rows, {c: {n: _cell(row.get(c)) for n, row in zip(table.row_numbers, table.rows)}
                         for c in given}


def _cell(value: object) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    return json.dumps(value, ensure_ascii=False)


def _text_inputs(given: list[str], file: str | Table | None, *, what: str
                 ) -> tuple[list[str], list[int], str]:
    """Texts from TEXT arguments, a data file, or stdin lines; their row numbers; the source."""
    if file and given:
        raise ValueError("give texts or --file, not both")
    if file:
        from engine.data import Table, load_texts

        text_set = load_texts(file if isinstance(file, Table) else Path(file))
        if text_set.empty_rows:
            print(f"skipped empty rows: {', '.join(map(str, text_set.empty_rows[:20]))}", file=sys.stderr)
        return text_set.texts, text_set.rows, text_set.source
    texts = list(given)
    if not texts and not sys.stdin.isatty():
        texts = [line.strip() for line in sys.stdin if line.strip()]
    if not texts:
        raise ValueError(f"nothing to {what}: give TEXT arguments, --file F, or lines on stdin")
    return texts, list(range(1, len(texts) + 1)), "arguments"


def _write_predictions(out: Path, rows: list[int], predictions,
                       kept: dict[str, dict[int, str]] | None = None) -> None:
    """`row, text, [the input's label columns], predicted_label, score, truncated, score_<L>...`:
    the prediction never takes the place of a label the file already had."""
    labels = list(predictions[0].scores)
    kept = kept or {}
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "text", *map(safe_cell, kept), "predicted_label", "score",
                         "truncated", *(f"score_{l}" for l in labels)])
        for row, p in zip(rows, predictions, strict=True):
            # the user's text and labels are neutralised against formulas; our numbers are not
            given = [safe_cell(cells.get(row, "")) for cells in kept.values()]
            writer.writerow([row, safe_cell(p.text), *given, safe_cell(p.label),
                             f"{p.score:.6f}", p.truncated, *(f"{p.scores[l]:.6f}" for l in labels)])
    tmp.replace(out)


def chat(args: argparse.Namespace) -> int:
    from engine.dialogue import ChatParams, chat_stream

    params = ChatParams(**given_params(args, ChatParams, CHAT_OPTIONS))
    message = " ".join(args.message)
    settings = get_settings()
    if args.json:
        import engine

        print_json(engine.chat(message, params, settings=settings).to_json())
        return 0
    for chunk in chat_stream(message, params, settings=settings):
        sys.stdout.write(chunk)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    import engine
    from engine.evaluation import EvalParams

    params = EvalParams(**given_params(args, EvalParams, EVAL_OPTIONS))
    ctx = local()
    metrics = engine.evaluate(params, settings=ctx.settings, registry=ctx.registry)
    if args.json:
        print_json(metrics)
        return 0
    _print_metrics(metrics)
    return 0


def _print_metrics(metrics: dict) -> None:
    skip = {"per_label", "confusion_matrix", "plots"}
    for key, value in metrics.items():
        if key not in skip:
            print(f"{key:12s} {value if not isinstance(value, float) else f'{value:.4f}'}")
    if metrics.get("per_label"):
        rows = [(label, fmt_score(m["precision"]), fmt_score(m["recall"]), fmt_score(m["f1"]), m["support"])
                for label, m in metrics["per_label"].items()]
        print()
        print_table(rows, ["label", "precision", "recall", "f1", "support"])
    for name, path in (metrics.get("plots") or {}).items():
        print(f"plot {name}: {path}")


def finetune(args: argparse.Namespace) -> int:
    from engine.finetune_params import FinetuneParams

    params = FinetuneParams(**given_params(args, FinetuneParams, FINETUNE_OPTIONS))
    ctx = local()
    if args.queue:
        return _enqueue(ctx, "finetune", params, args.json)
    from engine.finetuning import finetune as run_finetune
    from lmops.progress import TrainingBar

    with TrainingBar() as bar:
        result = run_finetune(params, settings=ctx.settings, registry=ctx.registry,
                              progress=bar.update)
    if args.json:
        print_json(result.to_json())
        return 0
    print(f"model {result.name} saved to {result.path}")
    print(f"trained in {result.train_seconds:.0f} s ({result.samples_per_second:.1f} samples/s)")
    if result.stopped_early:
        from engine.training_callbacks import stopped_note

        print(stopped_note(result.stopped_early))
    _print_metrics(result.metrics)
    return 0


def _promoted(ctx, task: str) -> str | None:
    from storage.db import session_scope
    from storage.model_records import get_promoted_model

    with session_scope(ctx.db) as session:
        model = get_promoted_model(session=session, workspace_id=ctx.workspace_id, task=task)
    return model.name if model else None


def _enqueue(ctx, kind: str, params, as_json: bool) -> int:
    """Queue a job of `kind` with its (already validated) params object."""
    from engine.kinds import get_kind
    from storage.db import session_scope
    from storage.queue import enqueue
    from storage.tables.jobs import JobCreate

    with session_scope(ctx.db) as session:
        job = enqueue(session=session, job_in=JobCreate(
            workspace_id=ctx.workspace_id, user_id="cli", **get_kind(kind).job_fields(params)))
        data = job.to_json()
    if as_json:
        print_json(data)
    else:
        print(f"queued job {data['id']} ({kind}); follow it with `lmops jobs`")
    return 0


def jobs(args: argparse.Namespace) -> int:
    from storage.db import session_scope
    from storage.queue import list_jobs

    ctx = local()
    with session_scope(ctx.db) as session:
        found = list_jobs(session=session, workspace_id=ctx.workspace_id, limit=args.limit)
        rows = [(j.to_json(), j.result) for j in found]
    if args.json:
        print_json([r for r, _ in rows])
        return 0
    table = [(r["id"], r["kind"], r["status"], r["attempts"], _progress_text(r["progress"]),
              shorten(r["error"] or _summary(r["kind"], result), 40), r["created"])
             for r, result in rows]
    print_table(table, ["id", "kind", "status", "attempts", "progress", "result", "created"])
    return 0


def _summary(kind: str, result: dict | None) -> str:
    """The kind's one-line summary of a result ("" for unknown kinds or no result)."""
    from engine.kinds import all_kinds

    spec = all_kinds().get(kind)
    try:
        return spec.summarize(result) if spec and result else ""
    except Exception:  # noqa: BLE001 (a malformed result must not break the listing)
        return ""


def _progress_text(progress: dict) -> str:
    if progress.get("stopped_early"):
        return f"{progress.get('step', 0)}/{progress['total_steps']} stopped early"
    if progress.get("total_steps"):
        return f"{progress.get('step', 0)}/{progress['total_steps']}"
    return ""


def run_kind(args: argparse.Namespace) -> int:
    """`lmops <kind>` for a kind with a generic CLI command (`JobSpec.cli`): inputs from TEXT
    arguments, `--file` or stdin, the kind's runner here, its output or JSON on stdout."""
    from engine.kinds import JobContext, get_kind

    spec = get_kind(args.kind)
    cli = spec.cli
    inputs, _rows, _source = _text_inputs(args.inputs, args.file, what=spec.name)
    params = spec.params(**{cli.inputs: tuple(inputs)}, **given_params(args, spec.params,
                                                                       cli.options))
    ctx = local()
    result = spec.run(params, JobContext(settings=ctx.settings, registry=ctx.registry,
                                         job_id=f"cli-{spec.name}"))
    if args.json:
        print_json(cli.to_json(result))
    else:
        print(cli.show(result))
    return 0


def worker(args: argparse.Namespace) -> int:
    from engine.worker import Worker, WorkerConfig

    kinds = tuple(k.strip() for k in args.kinds.split(",")) if args.kinds else None
    config = WorkerConfig(kinds=kinds, concurrency=args.concurrency)
    ctx = local()
    logging.getLogger("engine").setLevel(logging.INFO)
    print(f"worker {config.worker_id} on {_safe_url(ctx.settings.database_url)}; Ctrl-C to stop",
          file=sys.stderr)
    Worker(ctx.settings, config, db=ctx.db).run()
    return 0


def db_upgrade(args: argparse.Namespace) -> int:
    from lmops.wiring import upgrade_if_needed

    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    changed = upgrade_if_needed(settings.database_url)
    print(("upgraded " if changed else "already up to date: ") + _safe_url(settings.database_url),
          file=sys.stderr)
    return 0


def _safe_url(url: str) -> str:
    """The database URL without its password, for logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def serve(args: argparse.Namespace) -> int:
    settings = get_settings()
    missing = [name for name, value in (("SLACK_BOT_TOKEN", settings.slack_bot_token),
                                        ("SLACK_SIGNING_SECRET", settings.slack_signing_secret))
               if value is None or not value.get_secret_value()]
    if missing:
        raise ValueError(f"{' and '.join(missing)} must be set (or try `lmops dev`, which needs no Slack)")
    from bot.server import serve as serve_bot

    serve_bot(settings, worker=not args.no_worker, host=args.host or settings.lmops_host,
              port=args.port)
    return 0


def dev(args: argparse.Namespace) -> int:
    from lmops.dev import run_dev

    kwargs = {"host": args.host} | ({"port": args.port} if args.port is not None else {})
    run_dev(get_settings(), **kwargs)
    return 0
