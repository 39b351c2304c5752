"""The `/lm help` message, built from `bot.commands.SUBCOMMANDS` (so it lists only the
sub-commands that exist), and the details of one sub-command (`/lm help finetune`)."""

from __future__ import annotations

from typing import Any

from bot.blocks_base import context, fit, header, section
from bot.commands import COMMAND, SUBCOMMANDS, CommandError, Subcommand
from bot.mrkdwn import code, escape

INTRO = (
    "Classify and chat with language models, fine-tune them on your data and evaluate them, "
    "right here. Upload a CSV, TSV, JSONL or JSON file in a channel with the bot (or in a DM) "
    "to add a data set."
)


def _usage(sub: Subcommand) -> str:
    return code(f"{COMMAND} {sub.usage}")


def help_blocks(topic: str | None = None) -> list[dict[str, Any]]:
    """The help message; with `topic`, the details of that sub-command."""
    if topic is not None:
        return command_help_blocks(topic)
    blocks = [header(f"{COMMAND}: language models in Slack"), section(escape(INTRO))]
    for sub in SUBCOMMANDS.values():
        if sub.name == "help":
            continue
        blocks.append(section(
            f"{_usage(sub)}  _({escape(sub.who)})_\n{escape(sub.description)}\n"
            f"Example: {code(sub.example)}"
        ))
    quoted = code('labels="very good,not good"')
    note = (f"Options are {code('key=value')}; quote values with spaces ({quoted}). "
            f"{code(COMMAND + ' help COMMAND')} shows a command's options and more examples.")
    blocks.append(context([note]))
    return fit(blocks)


def command_help_blocks(name: str) -> list[dict[str, Any]]:
    """Usage, who may run it, options and examples of one sub-command."""
    sub = SUBCOMMANDS.get(name)
    if sub is None:
        raise CommandError(f"{name!r} is not a {COMMAND} command; {COMMAND} help lists them")
    blocks = [
        header(f"{COMMAND} {sub.name}"),
        section(f"{_usage(sub)}\n{escape(sub.description)}\n*Who:* {escape(sub.who)}"),
    ]
    if sub.options:
        lines = [f"• {code(key + '=')} {escape(text)}" for key, text in sub.options.items()]
        blocks.append(section("*Options*\n" + "\n".join(lines)))
    blocks.append(section("*Examples*\n" + "\n".join(code(e) for e in sub.examples)))
    return fit(blocks)


def help_text(topic: str | None = None) -> str:
    """The help as plain text: the notification text beside the blocks, and for terminals."""
    if topic is not None and topic not in SUBCOMMANDS:
        raise CommandError(f"{topic!r} is not a {COMMAND} command; {COMMAND} help lists them")
    subs = [SUBCOMMANDS[topic]] if topic else [s for s in SUBCOMMANDS.values() if s.name != "help"]
    lines = [] if topic else [INTRO, ""]
    for sub in subs:
        lines.append(f"{COMMAND} {sub.usage}  ({sub.who})")
        lines.append(f"    {sub.description}")
        lines += [f"    {key}=  {text}" for key, text in sub.options.items()] if topic else []
        lines += [f"    e.g. {example}" for example in (sub.examples if topic else sub.examples[:1])]
    return "\n".join(lines)
