"""The CLI, `/lm` and the job-kind registry agree: one name per concept.

Every `/lm` job sub-command enqueues a registered kind and its options are fields of that
kind's params dataclass, with help; the CLI command of the same kind offers each of those
options as a flag of the same name (`max_new_tokens` is `--max-new-tokens`); every CLI flag
taken from a params class is a field of it; every kind but the test-only `noop` can be run
from the CLI or `/lm`.
"""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from bot.commands import SUBCOMMANDS
from bot.kinds import JOB_SUBCOMMANDS
from engine.kinds import all_kinds, get_kind
from lmops import commands
from lmops.cli import build_parser
from lmops.params_args import flag

#: The CLI command of each kind with a hand-written one (the others use `JobSpec.cli`).
CLI_COMMANDS = {"classify": ("classify", commands.CLASSIFY_OPTIONS),
                "chat": ("chat", commands.CHAT_OPTIONS),
                "evaluate": ("eval", commands.EVAL_OPTIONS),
                "finetune": ("finetune", commands.FINETUNE_OPTIONS)}


def cli_parsers() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def cli_flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """`{dest: first long flag}` of a parser's options."""
    return {a.dest: next(o for o in a.option_strings if o.startswith("--"))
            for a in parser._actions if a.option_strings and a.dest != "help"}


def kind_cli(kind: str) -> tuple[str, tuple[str, ...]] | None:
    spec = get_kind(kind)
    if spec.cli is not None:
        return spec.name, spec.cli.options
    return CLI_COMMANDS.get(kind)


def test_every_job_subcommand_enqueues_a_known_kind_with_its_params_fields():
    for name, sub in JOB_SUBCOMMANDS.items():
        assert SUBCOMMANDS[name].job_kind == sub.kind in all_kinds()
        fields = {f.name: f for f in dataclasses.fields(get_kind(sub.kind).params)}
        for option in sub.options:
            assert option in fields, f"/lm {name} {option}= is not a {sub.kind} params field"
            assert fields[option].metadata.get("help"), f"{sub.kind}.{option} has no help"
            assert SUBCOMMANDS[name].options[option].startswith(fields[option].metadata["help"])


@pytest.mark.parametrize("kind", sorted(set(all_kinds()) - {"noop"}))
def test_every_kind_runs_from_the_cli_or_slack(kind):
    assert kind_cli(kind) or any(s.kind == kind for s in JOB_SUBCOMMANDS.values())


@pytest.mark.parametrize("kind", sorted(k for k in all_kinds() if kind_cli(k)))
def test_cli_flags_are_the_params_fields_and_cover_the_slack_options(kind):
    command, options = kind_cli(kind)
    parser = cli_parsers()[command]
    flags = cli_flags(parser)
    fields = {f.name for f in dataclasses.fields(get_kind(kind).params)}
    for option in options:
        assert option in fields and flags[option] == flag(option)
    for sub in JOB_SUBCOMMANDS.values():
        if sub.kind == kind:
            missing = [o for o in sub.options if flags.get(o) != flag(o)]
            assert not missing, f"/lm {sub.name} options without a CLI flag: {missing}"


def test_generic_cli_command_of_a_kind_parses():
    args = build_parser().parse_args(["embed", "--model", "minilm", "--json", "a", "b"])
    assert (args.kind, args.inputs, args.model, args.json) == ("embed", ["a", "b"], "minilm", True)
