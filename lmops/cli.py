"""The `lmops` console script: a thin layer that parses arguments and calls the engine.

Each command imports only what it needs, so `lmops models` starts fast and `lmops classify`
never imports the bot.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from engine.classify_params import ClassifyParams
from engine.dialogue import ChatParams
from engine.eval_params import EvalParams
from engine.finetune_params import FinetuneParams
from engine.kinds import all_kinds
from lmops import commands
from lmops.params_args import add_params_options

Handler = Callable[[argparse.Namespace], int]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def _dev(args: argparse.Namespace) -> int:
    """`lmops dev`; what stops it from starting (a refused --host, a port in use) is one line."""
    from lmops.dev import DevError

    try:
        return commands.dev(args)
    except DevError as exc:
        print(f"lmops dev: error: {exc}", file=sys.stderr)
        return 2


def data_folder() -> str:
    """Where this invocation keeps its models, database and artifacts (for `--help`)."""
    from engine.settings import get_settings

    try:
        return str(get_settings().home.resolve())
    except Exception:  # noqa: BLE001 (a bad setting is reported when a command runs)
        return "LMOPS_HOME, else the user data folder"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lmops", description="LLM toolkit and Slack chat-ops bot: classify, chat, evaluate.",
        epilog=f"data folder (models, database, artifacts; LMOPS_HOME sets another):\n  "
               f"{data_folder()}", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (to stderr)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="the Slack bot (HTTP, or Socket Mode with SLACK_APP_TOKEN) and a worker")
    p.add_argument("--no-worker", action="store_true", help="bot only (for more bot replicas)")
    p.add_argument("--host", help="interface to listen on (default: LMOPS_HOST or 0.0.0.0, all "
                   "interfaces, as a container needs; set 127.0.0.1 behind a local proxy)")
    p.add_argument("--port", type=int, help="HTTP port (default: LMOPS_PORT or 3000)")
    p.set_defaults(handler=commands.serve)

    p = sub.add_parser("dev", help="a local Slack-compatible workspace in the browser, wired to the bot")
    p.add_argument("--port", type=int, help="port of the workspace page (default 3001; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface (default 127.0.0.1; another needs LMOPS_DEV_TOKEN set)")
    p.set_defaults(handler=_dev)

    p = sub.add_parser("models", help="list built-in and fine-tuned models")
    _common(p)
    p.set_defaults(handler=commands.models)

    p = sub.add_parser("classify", help="label texts with a classifier or zero-shot labels",
                       epilog='example: lmops classify --labels billing,bug,praise "the app crashes"')
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify (or --file, or stdin)")
    add_params_options(p, ClassifyParams, commands.CLASSIFY_OPTIONS)
    p.add_argument("--file", help="CSV/TSV/JSONL/JSON of texts; writes FILE.predictions.csv")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--fast", action="store_true",
                           help="int8 dynamic quantisation on CPU (faster, may differ slightly); by default "
                                "only models whose int8 check passed at fine-tuning run int8")
    precision.add_argument("--exact", action="store_true", help="fp32 even where int8 would be the default")
    _common(p)
    p.set_defaults(handler=commands.classify)

    p = sub.add_parser("chat", help="one dialogue reply", epilog='example: lmops chat "How do I reset my password?"')
    p.add_argument("message", nargs="+", metavar="MESSAGE")
    add_params_options(p, ChatParams, commands.CHAT_OPTIONS)
    _common(p)
    p.set_defaults(handler=commands.chat)

    p = sub.add_parser("eval", help="evaluate a model on a labelled data file: metrics and plots")
    add_params_options(p, EvalParams, commands.EVAL_OPTIONS, required=("model", "data"),
                       aliases={"out_dir": "--out"})
    _common(p)
    p.set_defaults(handler=commands.evaluate)

    p = sub.add_parser("finetune", help="fine-tune a model (LoRA and other PEFT methods), evaluate and register it",
                       epilog="example: lmops finetune --data tickets.csv --epochs 4 --name tickets-v1")
    add_params_options(p, FinetuneParams, commands.FINETUNE_OPTIONS, required=("data",))
    p.add_argument("--queue", action="store_true", help="enqueue it for a worker instead of training here")
    _common(p)
    p.set_defaults(handler=commands.finetune)

    for spec in all_kinds().values():  # kinds that bring their own generic command (embed, ...)
        if spec.cli is not None:
            p = sub.add_parser(spec.name, help=spec.cli.help,
                               epilog=f"example: {spec.cli.example}" if spec.cli.example else None)
            p.add_argument("inputs", nargs="*", metavar="TEXT",
                           help=f"{spec.cli.inputs} (or --file, or stdin lines)")
            p.add_argument("--file", help="CSV/TSV/JSONL/JSON (a text column) or a text file")
            add_params_options(p, spec.params, spec.cli.options)
            _common(p)
            p.set_defaults(handler=commands.run_kind, kind=spec.name)

    p = sub.add_parser("jobs", help="the job queue, newest first")
    p.add_argument("--limit", type=int, default=50)
    _common(p)
    p.set_defaults(handler=commands.jobs)

    p = sub.add_parser("worker", help="run an engine worker (for example on a GPU machine)")
    p.add_argument("--kinds", help="comma-separated job kinds to take (default: all)")
    p.add_argument("--concurrency", type=int, default=1, help="general lanes (plus one for predictions)")
    p.set_defaults(handler=commands.worker)

    p = sub.add_parser("db", help="database maintenance")
    db_sub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = db_sub.add_parser("upgrade", help="apply migrations (also done at start-up)")
    up.set_defaults(handler=commands.db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    commands.quiet_libraries(verbose=args.verbose)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("lmops: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line, never a traceback, unless asked for
        if os.environ.get("LMOPS_DEBUG"):
            raise
        print(f"lmops {args.command}: error: {commands.describe_error(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
