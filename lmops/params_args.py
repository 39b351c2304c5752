"""CLI options derived from the engine's params dataclasses: a field `max_new_tokens` is the
flag `--max-new-tokens`, its metadata's help is the flag's help (with its choices and
default), its type reads the value. `/lm` options come from the same fields (`bot.grammar`),
so one concept has one name in the CLI, in Slack, in JSON and in Python.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from typing import Any

from engine.params import value_type


def flag(name: str) -> str:
    """`--max-new-tokens` for the field `max_new_tokens`."""
    return "--" + name.replace("_", "-")


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(","))


def add_params_options(parser: argparse.ArgumentParser, cls: type, names: tuple[str, ...], *,
                       required: tuple[str, ...] = (),
                       aliases: Mapping[str, str] | None = None) -> None:
    """Add a flag per field in `names` of the dataclass `cls`. Flags default to None (the
    dataclass's own default applies); booleans are switches; `aliases` adds another flag
    for a field (`{"out_dir": "--out"}`)."""
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    for name in names:
        f = by_name[name]
        kind = value_type(cls, name)
        text = f.metadata.get("help", "")
        options: dict[str, Any] = {"dest": name, "default": None}
        if kind is bool:
            options.update(action="store_true", default=None)
        else:
            options["type"] = _comma_list if kind is tuple else kind
            if f.metadata.get("choices"):
                options["choices"] = list(f.metadata["choices"])
            if kind is tuple:
                options["metavar"] = "A,B"
            default = f.default if f.default is not dataclasses.MISSING else None
            if default not in (None, ()) and "default" not in text:
                text += f" (default: {default:g})" if isinstance(default, float) else \
                    f" (default: {default})"
        names_ = [flag(name), *([aliases[name]] if aliases and name in aliases else [])]
        parser.add_argument(*names_, required=name in required, help=text or None, **options)


def given_params(args: argparse.Namespace, cls: type, names: tuple[str, ...]) -> dict[str, Any]:
    """The fields among `names` the user gave (None means "not given")."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
