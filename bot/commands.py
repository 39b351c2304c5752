"""The `/lm` slash command: its table of sub-commands, a parser and one typed command each.

`parse(text)` turns the text Slack sends with `/lm` into a `Command` (`ClassifyCommand`,
`FinetuneCommand`, ...) or raises `CommandError` with a short message for the user. The first
word is the sub-command; `key=value` words are options (values may be double-quoted, with `\\"`
inside); the other words are positional arguments or free text, in their order.

`SUBCOMMANDS` is the one table the help and the authorization middleware read: a later issue
adds a sub-command with `register(Subcommand(...))`, and the help lists only what is there.
Torch-free: only the engine's parameter classes are imported, to validate values early.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from bot.command_text import OPEN_QUOTES, Token, from_slack, tokenize
from bot.mrkdwn import USER_ID_PATTERN
from engine.classify_params import ClassifyParams
from engine.finetune_params import TASKS, FinetuneParams
from engine.peft_methods import METHODS
from engine.registry import validate_model_name

COMMAND = "/lm"
#: Who may run a sub-command. Trainers include admins; the owner is the user who made the job.
ROLES = ("anyone", "trainer", "admin", "owner-or-admin")
WHO_MAY = {
    "anyone": "anyone",
    "trainer": "trainers and admins",
    "admin": "admins",
    "owner-or-admin": "the job's owner and admins",
}
#: Roles that `/lm access grant|revoke` hands out (users without one are plain users).
GRANTABLE_ROLES = ("admin", "trainer")
HELP_WORDS = frozenset({"help", "--help", "-h", "?"})


class CommandError(ValueError):
    """A `/lm` text that can't be run; `message` is short and meant for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def allows(required: str, role: str | None, *, is_owner: bool = False) -> bool:
    """Whether a user with `role` ("admin", "trainer", "user"/None) may do what needs `required`."""
    if required not in ROLES:
        raise ValueError(f"required role {required!r} is not one of {', '.join(ROLES)}")
    if required == "anyone" or role == "admin":
        return True
    if required == "trainer":
        return role == "trainer"
    return required == "owner-or-admin" and is_owner


# ---------------------------------------------------------------------------------------------
# The commands


def _fail(message: str) -> None:
    raise CommandError(message)


def _show(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


_USER_ID = re.compile(rf"^{USER_ID_PATTERN}$")
_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,127})?$")


def _check_model(model: str | None, what: str = "model") -> None:
    if model is not None and (not _MODEL.match(model) or ".." in model):
        _fail(f"{what} {_show(model)} is not a model name; `/lm models` lists them")


def _check_ref(value: str, what: str) -> None:
    if not value.strip() or len(value) > 200 or "\n" in value:
        _fail(f"{what} {_show(value)} is not a {what} name or id; `/lm {what}s` lists them")


@dataclass(frozen=True)
class Command:
    """Base of the typed commands; `name` is the sub-command, `job_kind` the job it enqueues."""

    name: ClassVar[str] = ""
    job_kind: ClassVar[str | None] = None

    @property
    def role(self) -> str:
        """The role needed to run this command (see `ROLES`)."""
        return SUBCOMMANDS[self.name].role


@dataclass(frozen=True)
class HelpCommand(Command):
    name: ClassVar[str] = "help"
    topic: str | None = None

    def __post_init__(self) -> None:
        if self.topic is not None and self.topic not in SUBCOMMANDS:
            _fail(_unknown(self.topic, "help topic"))


@dataclass(frozen=True)
class ClassifyCommand(Command):
    name: ClassVar[str] = "classify"
    job_kind: ClassVar[str | None] = "classify"
    text: str
    model: str | None = None
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.text.strip():
            _fail("classify needs a text, like `/lm classify I love this product`")
        _check_model(self.model)
        if self.labels:
            try:
                params = ClassifyParams(model=self.model, labels=self.labels)
            except ValueError as error:
                _fail(str(error))
            object.__setattr__(self, "labels", params.labels)


@dataclass(frozen=True)
class ChatCommand(Command):
    name: ClassVar[str] = "chat"
    job_kind: ClassVar[str | None] = "chat"
    text: str
    model: str | None = None

    def __post_init__(self) -> None:
        if not self.text.strip():
            _fail("chat needs a message, like `/lm chat How do I reset my password?`")
        _check_model(self.model)


@dataclass(frozen=True)
class ModelsCommand(Command):
    name: ClassVar[str] = "models"


@dataclass(frozen=True)
class DatasetsCommand(Command):
    name: ClassVar[str] = "datasets"


@dataclass(frozen=True)
class JobsCommand(Command):
    name: ClassVar[str] = "jobs"


@dataclass(frozen=True)
class JobCommand(Command):
    name: ClassVar[str] = "job"
    job_id: int

    def __post_init__(self) -> None:
        if self.job_id < 1:
            _fail(f"job IDs are positive numbers, not {self.job_id}")


@dataclass(frozen=True)
class CancelCommand(Command):
    name: ClassVar[str] = "cancel"
    job_id: int

    def __post_init__(self) -> None:
        if self.job_id < 1:
            _fail(f"job IDs are positive numbers, not {self.job_id}")


@dataclass(frozen=True)
class FinetuneCommand(Command):
    """A fine-tune of a stored data set; the handler resolves `dataset` to its file."""

    name: ClassVar[str] = "finetune"
    job_kind: ClassVar[str | None] = "finetune"
    dataset: str
    task: str | None = None
    base: str | None = None
    method: str | None = None
    epochs: float | None = None
    lr: float | None = None
    model_name: str | None = None

    def __post_init__(self) -> None:
        _check_ref(self.dataset, "dataset")
        _check_model(self.base, "base")
        if self.model_name is not None:
            try:
                validate_model_name(self.model_name)
            except ValueError as error:
                _fail(str(error))
        try:
            FinetuneParams(data="<dataset>", **self.params())
        except ValueError as error:
            _fail(str(error))

    def params(self) -> dict[str, object]:
        """The options given, as `FinetuneParams` keyword arguments (defaults left out, so the
        handler may take the task from the data set); add `data=` to build the params."""
        given = {"task": self.task, "base": self.base, "method": self.method,
                 "epochs": self.epochs, "lr": self.lr, "name": self.model_name}
        return {key: value for key, value in given.items() if value is not None}

    def finetune_params(self, data: str, **defaults: object) -> FinetuneParams:
        """The validated `FinetuneParams` once the data set's file is known; `defaults` (such
        as `task=` from the data set) apply where the user gave no option."""
        return FinetuneParams(data=data, **{**defaults, **self.params()})


@dataclass(frozen=True)
class EvalCommand(Command):
    name: ClassVar[str] = "eval"
    job_kind: ClassVar[str | None] = "evaluate"
    model: str
    dataset: str

    def __post_init__(self) -> None:
        _check_model(self.model)
        _check_ref(self.dataset, "dataset")


@dataclass(frozen=True)
class PromoteCommand(Command):
    name: ClassVar[str] = "promote"
    model: str

    def __post_init__(self) -> None:
        _check_model(self.model)


@dataclass(frozen=True)
class AccessCommand(Command):
    """`access` (show), or `access grant|revoke` a role to/from one Slack user."""

    name: ClassVar[str] = "access"
    action: str = "show"
    user_id: str | None = None
    role_name: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ("show", "grant", "revoke"):
            _fail(f"access {_show(self.action)}: use `/lm access`, `grant` or `revoke`")
        if self.action != "show":
            if not self.user_id or not _USER_ID.match(self.user_id):
                _fail(f"access {self.action} needs a user, like "
                      f"`/lm access {self.action} @alice trainer`")
            if self.role_name not in GRANTABLE_ROLES:
                _fail(f"access {self.action} needs a role: admin or trainer")

    @property
    def role(self) -> str:
        return "anyone" if self.action == "show" else "admin"


def required_role(command: Command) -> str:
    """The role needed to run `command`: one of `ROLES`."""
    return command.role


# ---------------------------------------------------------------------------------------------
# Words with a meaning: `key=value` options and user mentions

_OPTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)=")
_MENTION = re.compile(rf"^<@({USER_ID_PATTERN})(?:\|([^>]*))?>$")


# ---------------------------------------------------------------------------------------------
# The table


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
            _fail(f"{self.subcommand} needs {missing}, like `{example}`")
        if len(values) > len(names):
            extra = " ".join(w.raw for w in self.words[len(names):])
            _fail(f"{self.subcommand} doesn't take {_show(extra)}; usage: "
                  f"`{COMMAND} {SUBCOMMANDS[self.subcommand].usage}`")
        return values


@dataclass(frozen=True)
class Subcommand:
    """One `/lm` sub-command: its help, who may run it and how its words become a Command."""

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


SUBCOMMANDS: dict[str, Subcommand] = {}
_ALIASES: dict[str, str] = {}


def register(subcommand: Subcommand) -> Subcommand:
    """Add a sub-command to `/lm` (and so to the help and the authorization table)."""
    for word in (subcommand.name, *subcommand.aliases):
        if word in SUBCOMMANDS or word in _ALIASES:
            raise ValueError(f"/lm {word} is already registered")
    SUBCOMMANDS[subcommand.name] = subcommand
    _ALIASES.update({alias: subcommand.name for alias in subcommand.aliases})
    return subcommand


def _unknown(word: str, what: str) -> str:
    close = difflib.get_close_matches(word.lower(), [*SUBCOMMANDS, *_ALIASES], n=1, cutoff=0.6)
    guess = f" Did you mean `{COMMAND} {_ALIASES.get(close[0], close[0])}`?" if close else ""
    return f"{_show(word)} is not a {what}.{guess} `{COMMAND} help` lists them."


def parse(text: str) -> Command:
    """The command in a `/lm` text; raises `CommandError` with a message for the user."""
    tokens = tokenize(text or "")
    if not tokens:
        return HelpCommand()
    word = from_slack(tokens[0].value).lower()
    name = _ALIASES.get(word, word)
    if name not in SUBCOMMANDS:
        raise CommandError(_unknown(word, f"{COMMAND} command"))
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
    args.text = _free_text(text, args.words)
    return spec.build(args)


def _add_option(args: Args, spec: Subcommand, key: str, token: Token) -> None:
    if key not in spec.options:
        known = ", ".join(spec.options) or "none"
        close = difflib.get_close_matches(key, list(spec.options), n=1)
        guess = f" (did you mean {close[0]}=?)" if close else ""
        quote = " To send text with `=`, put it in double quotes." if spec.free_text else ""
        _fail(f"unknown option {key}={guess} for {spec.name}; its options: {known}.{quote}")
    if key in args.options:
        _fail(f"option {key}= is given twice")
    if token.unclosed:
        _fail(f"option {key}= has a quote that is never closed")
    value = from_slack(token.value[len(key) + 1:]).strip()
    if not value:
        _fail(f"option {key}= needs a value, like `{spec.example}`")
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


def _number(args: Args, key: str) -> float | None:
    value = args.options.get(key)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not math.isfinite(number):
        _fail(f"{key} must be a number, not {_show(value)}")
    return number


def _job_id(args: Args) -> int:
    example = SUBCOMMANDS[args.subcommand].example
    (value,) = args.positional(("a job ID",), example)
    digits = value.removeprefix("#")
    if not digits.isdigit():
        _fail(f"a job ID is a number, like `{example}`, not {_show(value)}")
    return int(digits)


def _no_arguments(command: type[Command]) -> Callable[[Args], Command]:
    def build(args: Args) -> Command:
        args.positional((), f"{COMMAND} {args.subcommand}")
        return command()

    return build


def _build_classify(args: Args) -> Command:
    labels = args.options.get("labels")
    return ClassifyCommand(
        text=args.text, model=args.options.get("model"),
        labels=tuple(label.strip() for label in labels.split(",")) if labels else (),
    )


def _build_access(args: Args) -> Command:
    if not args.words:
        return AccessCommand()
    action = from_slack(args.words[0].value).lower()
    if action not in ("grant", "revoke", "show", "list"):
        _fail(f"access {_show(action)}: use `/lm access`, `/lm access grant @user trainer` "
              "or `/lm access revoke @user trainer`")
    if action in ("show", "list"):
        args.positional(("show",), f"{COMMAND} access")
        return AccessCommand()
    user_id = role = None
    for token in args.words[1:]:
        mention = _MENTION.match(token.raw)
        word = from_slack(token.value)
        if mention:
            if user_id:
                _fail(f"access {action} takes one user at a time")
            user_id = mention[1]
        elif word.lower().rstrip("s") in GRANTABLE_ROLES and role is None:
            role = word.lower().rstrip("s")
        elif token.raw.startswith("<!"):
            _fail(f"roles are granted to one person, not to {_show(word)}")
        elif word.startswith("@"):
            _fail(f"{_show(word)} is not a user Slack could identify: type @ and pick the person "
                  "from the list, so Slack sends their ID")
        else:
            _fail(f"access {action} {_show(word)}: give one @user and a role (admin or trainer), "
                  f"like `/lm access {action} @alice trainer`")
    return AccessCommand(action=action, user_id=user_id, role_name=role)


def _build_finetune(args: Args) -> Command:
    (dataset,) = args.positional(("a dataset",), SUBCOMMANDS["finetune"].example)
    o = args.options
    return FinetuneCommand(
        dataset=_ref(dataset),
        task=o.get("task"), base=o.get("base"), method=o.get("method"),
        epochs=_number(args, "epochs"), lr=_number(args, "lr"), model_name=o.get("name"),
    )


def _build_eval(args: Args) -> Command:
    model, dataset = args.positional(("a model", "a dataset"), SUBCOMMANDS["eval"].example)
    return EvalCommand(model=model, dataset=_ref(dataset))


def _ref(value: str) -> str:
    """A data set named by id may be written `#12`."""
    return value[1:] if value.startswith("#") and value[1:].isdigit() else value


def _build_help(args: Args) -> Command:
    if not args.words:
        return HelpCommand()
    (topic,) = args.positional(("a topic",), f"{COMMAND} help finetune")
    topic = topic.lower()
    return HelpCommand(topic=_ALIASES.get(topic, topic))


register(Subcommand(
    "help", "help [COMMAND]", "Show this help, or the details of one command.",
    (f"{COMMAND} help finetune",), "anyone", _build_help))
register(Subcommand(
    "classify", "classify [model=M] [labels=a,b] TEXT",
    "Label a text: the label, its confidence and the other labels' scores. Without a model, the "
    "workspace's promoted classifier; with labels=, zero-shot with any label names.",
    (f"{COMMAND} classify The checkout page keeps crashing",
     f"{COMMAND} classify labels=bug,feature,question Can you add dark mode?",
     f'{COMMAND} classify model=sentiment "Great support, thanks!"'),
    "anyone", _build_classify,
    {"model": "the model to use (`/lm models`)",
     "labels": "comma-separated label names, for zero-shot classification"},
    free_text=True))
register(Subcommand(
    "chat", "chat [model=M] TEXT", "Ask a chat model; the reply is streamed into the channel.",
    (f"{COMMAND} chat How do I reset my password?",),
    "anyone", lambda a: ChatCommand(text=a.text, model=a.options.get("model")),
    {"model": "the chat model to use (`/lm models`)"}, free_text=True))
register(Subcommand(
    "models", "models", "List the built-in and fine-tuned models.",
    (f"{COMMAND} models",), "anyone", _no_arguments(ModelsCommand)))
register(Subcommand(
    "datasets", "datasets",
    "List the data sets (upload a CSV, TSV, JSONL or JSON file in a channel with the bot to "
    "add one).", (f"{COMMAND} datasets",), "anyone", _no_arguments(DatasetsCommand)))
register(Subcommand(
    "jobs", "jobs", "List the queue: running, waiting and recent jobs.",
    (f"{COMMAND} jobs",), "anyone", _no_arguments(JobsCommand)))
register(Subcommand(
    "job", "job ID", "Show one job's state and progress.",
    (f"{COMMAND} job 42",), "anyone", lambda a: JobCommand(job_id=_job_id(a))))
register(Subcommand(
    "finetune", "finetune DATASET [task=] [base=] [method=] [epochs=] [lr=] [name=]",
    "Fine-tune a model on a data set; progress and results are posted in the channel.",
    (f"{COMMAND} finetune support-tickets",
     f"{COMMAND} finetune support-tickets method=lora epochs=3 name=tickets-v1",
     f"{COMMAND} finetune faq-dialogues task=chat base=smollm2 lr=5e-4"),
    "trainer", _build_finetune,
    {"task": f"{' or '.join(TASKS)} (default: the data set's)",
     "base": "the model to start from (default: minilm for classify, smollm2 for chat)",
     "method": f"{', '.join(METHODS)} (default: lora)",
     "epochs": f"passes over the data (default: {FinetuneParams.epochs:g})",
     "lr": "learning rate (default: depends on the method)",
     "name": "the new model's name (letters, digits, '.', '_', '-')"},
    aliases=("fine-tune", "train")))
register(Subcommand(
    "eval", "eval MODEL DATASET", "Evaluate a model on a data set: metrics and charts.",
    (f"{COMMAND} eval tickets-v1 support-tickets-test",), "trainer", _build_eval,
    aliases=("evaluate",)))
register(Subcommand(
    "cancel", "cancel ID", "Stop a job at its next step.",
    (f"{COMMAND} cancel 42",), "owner-or-admin", lambda a: CancelCommand(job_id=_job_id(a))))
register(Subcommand(
    "promote", "promote MODEL", "Make a model the workspace's default for its task.",
    (f"{COMMAND} promote tickets-v1",), "trainer",
    lambda a: PromoteCommand(model=a.positional(("a model",), f"{COMMAND} promote tickets-v1")[0])))
register(Subcommand(
    "access", "access [grant|revoke @USER admin|trainer]",
    "Show who are admins and trainers; admins grant and revoke roles.",
    (f"{COMMAND} access", f"{COMMAND} access grant @alice trainer",
     f"{COMMAND} access revoke @bob admin"),
    "anyone", _build_access, who_note="anyone sees the roles; admins grant and revoke"))
