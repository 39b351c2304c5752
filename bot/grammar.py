"""The `/lm` grammar: the table of sub-commands, the parser, and options derived from the
engine's params dataclasses.

`parse(text)` turns the text Slack sends with `/lm` into a `Command` or raises `CommandError`
with a short message for the user. The first word is the sub-command; `key=value` words are
options (values may be double-quoted, with `\\"` inside); the other words are positional
arguments or free text, in their order.

`SUBCOMMANDS` is the one table the help, the authorization middleware and the local
workspace's completions read. Sub-commands are added with `register(Subcommand(...))`:
`bot.commands` adds the lists and state changes, each job kind's bot module (`bot.kinds`) adds
its own. Torch-free.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bot.command_text import OPEN_QUOTES, Token, clean, from_slack, tokenize
from engine.params import value_type

COMMAND = "/lm"
#: Who may run a sub-command. Trainers include admins; the owner is the user who made the job.
ROLES = ("anyone", "trainer", "admin", "owner-or-admin")
WHO_MAY = {
    "anyone": "anyone",
    "trainer": "trainers and admins",
    "admin": "admins",
    "owner-or-admin": "the job's owner and admins",
}
HELP_WORDS = frozenset({"help", "--help", "-h", "?"})


class CommandError(ValueError):
    """A `/lm` text that can't be run; `message` is short and meant for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def fail(message: str) -> typing.NoReturn:
    raise CommandError(message)


def show(value: str, limit: int = 40) -> str:
    """A user's word, quoted and shortened, for an error message."""
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


def allows(required: str, role: str | None, *, is_owner: bool = False) -> bool:
    """Whether a user with `role` ("admin", "trainer", "user"/None) may do what needs `required`."""
    if required not in ROLES:
        raise ValueError(f"required role {required!r} is not one of {', '.join(ROLES)}")
    if required == "anyone" or role == "admin":
        return True
    if required == "trainer":
        return role == "trainer"
    return required == "owner-or-admin" and is_owner


@dataclass(frozen=True)
class Command:
    """Base of the parsed commands; `name` is the sub-command."""

    name: ClassVar[str] = ""

    @property
    def role(self) -> str:
        """The role needed to run this command (see `ROLES`)."""
        return SUBCOMMANDS[self.name].role

    @property
    def job_kind(self) -> str | None:
        """The job kind this command enqueues, if any."""
        return SUBCOMMANDS[self.name].job_kind

    @property
    def changes_state(self) -> bool:
        """Whether it changes something without making a job (cancel, promote, grant): such a
        request runs once per trigger id, as a job is made once."""
        return False


@dataclass(frozen=True)
class HelpCommand(Command):
    name: ClassVar[str] = "help"
    topic: str | None = None

    def __post_init__(self) -> None:
        if self.topic is not None and self.topic not in SUBCOMMANDS:
            fail(unknown(self.topic, "help topic"))


@dataclass
class Args:
    """A sub-command's words after the tokenizer: options, positional words, free text."""

    subcommand: str
    options: dict[str, str] = field(default_factory=dict)
    words: list[Token] = field(default_factory=list)
    text: str = ""

    def positional(self, names: tuple[str, ...], example: str) -> list[str]:
        """Exactly the positional arguments `names`, unescaped; otherwise a CommandError."""
        values = [from_slack(w.value) for w in self.words]
        if len(values) < len(names):
            missing = " and ".join(names[len(values):])
            fail(f"{self.subcommand} needs {missing}, like `{example}`")
        if len(values) > len(names):
            extra = " ".join(w.raw for w in self.words[len(names):])
            fail(f"{self.subcommand} doesn't take {show(extra)}; usage: "
                 f"`{COMMAND} {SUBCOMMANDS[self.subcommand].usage}`")
        return values


@dataclass(frozen=True)
class Subcommand:
    """One `/lm` sub-command: its help, who may run it and how its words become a Command.
    `doing` names what it does for a refusal ("start fine-tunes"); `job_kind` is the job kind
    it enqueues; `rank` orders the help; `actions` are the buttons that do the same thing (and
    so need the same role)."""

    name: str
    usage: str
    description: str
    examples: tuple[str, ...]
    role: str
    build: Callable[[Args], Command]
    options: dict[str, str] = field(default_factory=dict)
    free_text: bool = False
    aliases: tuple[str, ...] = ()
    who_note: str | None = None
    doing: str | None = None
    job_kind: str | None = None
    rank: int = 50
    actions: tuple[str, ...] = ()  # button action ids that do what this sub-command does

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role {self.role!r} is not one of {', '.join(ROLES)}")
        if not self.examples:
            raise ValueError(f"sub-command {self.name!r} needs at least one example")

    @property
    def example(self) -> str:
        return self.examples[0]

    @property
    def who(self) -> str:
        """Who may run it, in words ("trainers and admins")."""
        return self.who_note or WHO_MAY[self.role]

    @property
    def action_words(self) -> str:
        return self.doing or f"use `{COMMAND} {self.name}`"


SUBCOMMANDS: dict[str, Subcommand] = {}
_ALIASES: dict[str, str] = {}


def register(subcommand: Subcommand) -> Subcommand:
    """Add a sub-command to `/lm` (and so to the help and the authorization table)."""
    for word in (subcommand.name, *subcommand.aliases):
        if word in SUBCOMMANDS or word in _ALIASES:
            raise ValueError(f"/lm {word} is already registered")
    ordered = sorted([*SUBCOMMANDS.values(), subcommand], key=lambda s: s.rank)
    SUBCOMMANDS.clear()
    SUBCOMMANDS.update((s.name, s) for s in ordered)
    _ALIASES.update({alias: subcommand.name for alias in subcommand.aliases})
    return subcommand


def unregister(name: str) -> None:
    sub = SUBCOMMANDS.pop(name, None)
    for alias in sub.aliases if sub else ():
        _ALIASES.pop(alias, None)


def canonical(word: str) -> str:
    """The sub-command a word (or alias) names."""
    return _ALIASES.get(word, word)


def unknown(word: str, what: str) -> str:
    close = difflib.get_close_matches(word.lower(), [*SUBCOMMANDS, *_ALIASES], n=1, cutoff=0.6)
    guess = f" Did you mean `{COMMAND} {_ALIASES.get(close[0], close[0])}`?" if close else ""
    return f"{show(word)} is not a {what}.{guess} `{COMMAND} help` lists them."


_OPTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)=")


def parse(text: str | None) -> Command:
    """The command in a `/lm` text; raises `CommandError` with a message for the user. NUL,
    control characters and bidi overrides are taken out first (`command_text.clean`), so
    they reach neither job params nor messages."""
    text = clean(text or "")
    tokens = tokenize(text)
    if not tokens:
        return HelpCommand()
    word = from_slack(tokens[0].value).lower()
    name = canonical(word)
    if name not in SUBCOMMANDS:
        raise CommandError(unknown(word, f"{COMMAND} command"))
    rest = tokens[1:]
    if name != "help" and len(rest) == 1 and rest[0].value.lower() in HELP_WORDS:
        return HelpCommand(topic=name)
    spec = SUBCOMMANDS[name]
    args = Args(subcommand=name)
    for token in rest:
        match = _OPTION.match(token.raw)
        if match and (not spec.free_text or not args.words or match[1].lower() in spec.options):
            _add_option(args, spec, match[1].lower(), token)
        else:
            args.words.append(token)
    args.text = _free_text(text or "", args.words)
    return spec.build(args)


def _add_option(args: Args, spec: Subcommand, key: str, token: Token) -> None:
    if key not in spec.options:
        known = ", ".join(spec.options) or "none"
        close = difflib.get_close_matches(key, list(spec.options), n=1)
        guess = f" (did you mean {close[0]}=?)" if close else ""
        quote = " To send text with `=`, put it in double quotes." if spec.free_text else ""
        fail(f"unknown option {key}={guess} for {spec.name}; its options: {known}.{quote}")
    if key in args.options:
        fail(f"option {key}= is given twice")
    if token.unclosed:
        fail(f"option {key}= has a quote that is never closed")
    value = from_slack(token.value[len(key) + 1:]).strip()
    if not value:
        fail(f"option {key}= needs a value, like `{spec.example}`")
    args.options[key] = value


def _free_text(text: str, words: list[Token]) -> str:
    if not words:
        return ""
    if len(words) == 1 and words[0].quoted and words[0].raw[0] in OPEN_QUOTES:
        return from_slack(words[0].value).strip()
    pieces = [words[0].raw]
    for before, word in itertools.pairwise(words):
        gap = text[before.end:word.start]
        pieces.append(gap if gap.isspace() else " ")
        pieces.append(word.raw)
    return from_slack("".join(pieces)).strip()


# ---------------------------------------------------------------------------------------------
# Options derived from a params dataclass: the field's name is the option, its metadata's
# "help" the help text, its type how the value is read.


def field_options(params: type, names: tuple[str, ...]) -> dict[str, str]:
    """`{option: help}` for the fields `names` of the dataclass `params`: the field's help,
    its choices and its default."""
    by_name = {f.name: f for f in dataclasses.fields(params)}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"{params.__name__} has no field {', '.join(missing)}")
    return {n: field_help_text(by_name[n]) for n in names}


def field_help_text(f: dataclasses.Field) -> str:
    """`passes over the training data (default: 4)`, `... (lora, adalora, ...; default: lora)`."""
    text = f.metadata.get("help", "")
    notes = []
    if f.metadata.get("choices"):
        notes.append(", ".join(map(str, f.metadata["choices"])))
    if f.default not in (dataclasses.MISSING, None) and "default" not in text:
        default = f"{f.default:g}" if isinstance(f.default, float) else str(f.default)
        notes.append(f"default: {default}")
    return f"{text} ({'; '.join(notes)})" if notes else text


def option_value(params: type, key: str, text: str) -> Any:
    """A `key=text` option read as the type of the params field `key`."""
    kind = value_type(params, key)
    if kind is bool:
        lowered = text.lower()
        if lowered not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            fail(f"{key} must be true or false, not {show(text)}")
        return lowered in ("true", "yes", "on", "1")
    if kind is int:
        if not re.fullmatch(r"[+-]?\d+", text):
            fail(f"{key} must be a whole number, not {show(text)}")
        return int(text)
    if kind is float:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            fail(f"{key} must be a number, not {show(text)}")
        return number
    if kind is tuple:
        return tuple(part.strip() for part in text.split(","))
    return text


# ---------------------------------------------------------------------------------------------
# Names the user gives

_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,127})?$")


def check_model(model: str | None, what: str = "model") -> None:
    """A model name (or hub id) that can't point outside the registry."""
    if model is not None and (not _MODEL.match(model) or ".." in model):
        fail(f"{what} {show(model)} is not a model name; `/lm models` lists them")


def check_ref(value: str, what: str) -> None:
    """A data set (or other) name or id, as `/lm datasets` lists them."""
    if not value.strip() or len(value) > 200 or "\n" in value:
        fail(f"{what} {show(value)} is not a {what} name or id; `/lm {what}s` lists them")
