"""The `/lm` sub-commands that make no job: help, the lists, one job's state, and the quick
state changes (cancel, promote, access). Each is a small typed command built from the parsed
words; the job sub-commands (classify, chat, finetune, eval) are declared beside their job
kind's presentation in `bot.kinds`, which this module loads, so importing it (or `parse`)
gives the whole grammar.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from bot.blocks import ACTION_CANCEL, ACTION_PROMOTE
from bot.command_text import from_slack
from bot.grammar import (
    COMMAND,
    ROLES,
    SUBCOMMANDS,
    WHO_MAY,
    Args,
    Command,
    CommandError,
    HelpCommand,
    Subcommand,
    allows,
    canonical,
    check_model,
    fail,
    parse,
    register,
    show,
)
from bot.mrkdwn import USER_ID_PATTERN

#: Roles that `/lm access grant|revoke` hands out (users without one are plain users).
GRANTABLE_ROLES = ("admin", "trainer")
_USER_ID = re.compile(rf"^{USER_ID_PATTERN}$")
_MENTION = re.compile(rf"^<@({USER_ID_PATTERN})(?:\|([^>]*))?>$")

__all__ = ["COMMAND", "ROLES", "SUBCOMMANDS", "WHO_MAY", "AccessCommand", "CancelCommand",
           "Command", "CommandError", "DatasetsCommand", "GRANTABLE_ROLES", "HelpCommand",
           "JobCommand", "JobsCommand", "MAX_JOB_ID", "ModelsCommand", "PromoteCommand",
           "Subcommand", "allows", "job_id_of", "parse", "register", "required_role"]


@dataclass(frozen=True)
class ModelsCommand(Command):
    name: ClassVar[str] = "models"


@dataclass(frozen=True)
class DatasetsCommand(Command):
    name: ClassVar[str] = "datasets"


@dataclass(frozen=True)
class JobsCommand(Command):
    """`jobs`: the long jobs (not the predictions lane's); `jobs all`: every job."""

    name: ClassVar[str] = "jobs"
    all_jobs: bool = False


#: The largest job ID a database holds (a 64-bit row id); larger numbers name no job.
MAX_JOB_ID = 2**63 - 1


@dataclass(frozen=True)
class JobCommand(Command):
    name: ClassVar[str] = "job"
    job_id: int

    def __post_init__(self) -> None:
        if self.job_id < 1:
            fail(f"job IDs are positive numbers, not {self.job_id}")
        if self.job_id > MAX_JOB_ID:
            fail(f"{show(str(self.job_id))} is too large to be a job ID; `/lm jobs` lists them")


@dataclass(frozen=True)
class CancelCommand(JobCommand):
    name: ClassVar[str] = "cancel"

    @property
    def changes_state(self) -> bool:
        return True


@dataclass(frozen=True)
class PromoteCommand(Command):
    name: ClassVar[str] = "promote"
    model: str

    def __post_init__(self) -> None:
        check_model(self.model)

    @property
    def changes_state(self) -> bool:
        return True


@dataclass(frozen=True)
class AccessCommand(Command):
    """`access` (show), or `access grant|revoke` a role to/from one Slack user."""

    name: ClassVar[str] = "access"
    action: str = "show"
    user_id: str | None = None
    role_name: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ("show", "grant", "revoke"):
            fail(f"access {show(self.action)}: use `/lm access`, `grant` or `revoke`")
        if self.action != "show":
            if not self.user_id or not _USER_ID.match(self.user_id):
                fail(f"access {self.action} needs a user, like "
                     f"`/lm access {self.action} @alice trainer`")
            if self.role_name not in GRANTABLE_ROLES:
                fail(f"access {self.action} needs a role: admin or trainer")

    @property
    def role(self) -> str:
        return "anyone" if self.action == "show" else "admin"

    @property
    def changes_state(self) -> bool:
        return self.action != "show"


def required_role(command: Command) -> str:
    """The role needed to run `command`: one of `ROLES`."""
    return command.role


def job_id_of(value: str, example: str = f"{COMMAND} cancel 42") -> int:
    """The job ID in `42` or `#42`; a `CommandError` for anything else."""
    digits = value.removeprefix("#")
    if not (digits.isascii() and digits.isdigit()):
        fail(f"a job ID is a number, like `{example}`, not {show(value)}")
    if len(digits) > len(str(MAX_JOB_ID)) or int(digits) > MAX_JOB_ID:
        fail(f"{show(value)} is too large to be a job ID; `/lm jobs` lists them")
    return int(digits)


def _job_id(args: Args) -> int:
    example = SUBCOMMANDS[args.subcommand].example
    (value,) = args.positional(("a job ID",), example)
    return job_id_of(value, example)


def _no_arguments(command: type[Command]) -> Callable[[Args], Command]:
    def build(args: Args) -> Command:
        args.positional((), f"{COMMAND} {args.subcommand}")
        return command()

    return build


def _build_jobs(args: Args) -> Command:
    if not args.words:
        return JobsCommand()
    (word,) = args.positional(("all",), f"{COMMAND} jobs all")
    if word.lower() != "all":
        fail(f"jobs {show(word)}: use `{COMMAND} jobs`, or `{COMMAND} jobs all` for every job")
    return JobsCommand(all_jobs=True)


def _build_help(args: Args) -> Command:
    if not args.words:
        return HelpCommand()
    (topic,) = args.positional(("a topic",), f"{COMMAND} help finetune")
    return HelpCommand(topic=canonical(topic.lower()))


def _build_access(args: Args) -> Command:
    if not args.words:
        return AccessCommand()
    action = from_slack(args.words[0].value).lower()
    if action not in ("grant", "revoke", "show", "list"):
        fail(f"access {show(action)}: use `/lm access`, `/lm access grant @user trainer` "
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
                fail(f"access {action} takes one user at a time")
            user_id = mention[1]
        elif word.lower().rstrip("s") in GRANTABLE_ROLES and role is None:
            role = word.lower().rstrip("s")
        elif token.raw.startswith("<!"):
            fail(f"roles are granted to one person, not to {show(word)}")
        elif word.startswith("@"):
            fail(f"{show(word)} is not a user Slack could identify: type @ and pick the person "
                 "from the list, so Slack sends their ID")
        else:
            fail(f"access {action} {show(word)}: give one @user and a role (admin or trainer), "
                 f"like `/lm access {action} @alice trainer`")
    return AccessCommand(action=action, user_id=user_id, role_name=role)


register(Subcommand(
    "help", "help [COMMAND]", "Show this help, or the details of one command.",
    (f"{COMMAND} help finetune",), "anyone", _build_help, rank=0))
register(Subcommand(
    "models", "models", "List the built-in and fine-tuned models.",
    (f"{COMMAND} models",), "anyone", _no_arguments(ModelsCommand), rank=30))
register(Subcommand(
    "datasets", "datasets",
    "List the data sets (upload a CSV, TSV, JSONL or JSON file in a channel with the bot to "
    "add one).", (f"{COMMAND} datasets",), "anyone", _no_arguments(DatasetsCommand), rank=40))
register(Subcommand(
    "jobs", "jobs [all]",
    "List the queue: running, waiting and recent fine-tunes and evaluations (`all` adds "
    "every prediction).", (f"{COMMAND} jobs", f"{COMMAND} jobs all"), "anyone", _build_jobs,
    rank=50))
register(Subcommand(
    "job", "job ID", "Show one job's state and progress.",
    (f"{COMMAND} job 42",), "anyone", lambda a: JobCommand(job_id=_job_id(a)), rank=60))
register(Subcommand(
    "cancel", "cancel ID", "Stop a job at its next step.",
    (f"{COMMAND} cancel 42",), "owner-or-admin", lambda a: CancelCommand(job_id=_job_id(a)),
    doing="cancel this job", actions=(ACTION_CANCEL,), rank=90))
register(Subcommand(
    "promote", "promote MODEL", "Make a model the workspace's default for its task.",
    (f"{COMMAND} promote tickets-v1",), "trainer",
    lambda a: PromoteCommand(model=a.positional(("a model",), f"{COMMAND} promote tickets-v1")[0]),
    doing="promote models", actions=(ACTION_PROMOTE,), rank=100))
register(Subcommand(
    "access", "access [grant|revoke @USER admin|trainer]",
    "Show who are admins and trainers; admins grant and revoke roles.",
    (f"{COMMAND} access", f"{COMMAND} access grant @alice trainer",
     f"{COMMAND} access revoke @bob admin"),
    "anyone", _build_access, who_note="anyone sees the roles; admins grant and revoke",
    doing="grant or revoke roles", rank=110))

import bot.kinds  # noqa: E402,F401  (registers the job sub-commands: classify, chat, ...)
