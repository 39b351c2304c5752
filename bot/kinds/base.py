"""What a job kind looks like on the bot's side: its `/lm` sub-command (positional words,
options taken from the engine's params dataclass, who may run it, how names resolve) and its
presentation in Slack (the live message, the results in the thread, the charts).

A kind's bot module declares one `JobSubcommand` and calls `register_job_subcommand`; the
grammar, the help, the authorization table, the `/lm` listener and the reporter read it from
there and never branch on the kind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.blocks import job_failed_blocks, job_status_blocks
from bot.blocks_base import Block
from bot.grammar import (
    Args,
    Command,
    Subcommand,
    fail,
    field_options,
    option_value,
    register,
)
from engine.kinds import get_kind

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.job_requests import Origin
    from bot.runtime import BotRuntime
    from bot.store import BotStore

#: A job as presenters and the job blocks take it: `bot.job_requests.job_view(job)`, the
#: `JobPublic.to_json()` shape (`id`, `kind`, `status`, `params`, `progress`, `result`,
#: `created`...).
JobJSON = dict[str, Any]


@dataclass(frozen=True)
class JobRequest(Command):
    """A job sub-command as parsed: its options (read as the params fields' types), its
    positional words and its free text."""

    subcommand: str
    options: tuple[tuple[str, Any], ...] = ()
    args: tuple[str, ...] = ()
    text: str = ""

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.subcommand

    @property
    def given(self) -> dict[str, Any]:
        """The options the user gave, as params keyword arguments."""
        return dict(self.options)

    def option(self, key: str, default: Any = None) -> Any:
        return self.given.get(key, default)


def status_message(job: JobJSON) -> list[Block]:
    """The live status message of a long job (progress bar, step, loss, ETA, Cancel)."""
    return job_failed_blocks(job) if job.get("status") == "failed" else job_status_blocks(job)


@dataclass(frozen=True)
class Presenter:
    """How a kind's jobs look in Slack.

    - `live`: post the message when the job appears and update it as it runs (False: one
      message when the job is done);
    - `message(job)`: the message for the job's current state (the job JSON, with `params`,
      `progress`, `result`...);
    - `results(job)`: blocks posted in the message's thread when the job succeeds, or None;
    - `plots`: upload the result's `plots` there too.
    """

    live: bool = True
    message: Callable[[JobJSON], list[Block]] = status_message
    results: Callable[[JobJSON], list[Block] | None] = lambda job: None
    plots: bool = False


Resolve = Callable[["BotStore", "Origin", JobRequest], Awaitable[tuple[Any, dict[str, Any]]]]


@dataclass(frozen=True)
class JobSubcommand:
    """A `/lm` sub-command that enqueues a job of `kind`.

    `options` are fields of the kind's params dataclass offered as `key=value`; `positional`
    names the positional words in errors (`("a model", "a dataset")`) and `usage_args` in the
    usage; `free_text` is the usage word of free text (`TEXT`) and `missing_text` the error
    when it is empty. `check(request)` refuses bad words at once; `to_params(store, origin,
    request)` resolves names in the workspace and builds the params (returns them and the
    details for the audit log, which records the job when `audited`). `queued(request)` is the
    acknowledgement, `presenter` the job's look, `install(app, rt)` adds its buttons.
    """

    name: str
    kind: str
    description: str
    examples: tuple[str, ...]
    to_params: Resolve
    queued: Callable[[JobRequest], str]
    role: str = "anyone"
    options: tuple[str, ...] = ()
    positional: tuple[str, ...] = ()
    usage_args: tuple[str, ...] = ()
    free_text: str | None = None
    missing_text: str = ""
    check: Callable[[JobRequest], None] = lambda request: None
    presenter: Presenter = field(default_factory=Presenter)
    aliases: tuple[str, ...] = ()
    doing: str | None = None
    audited: bool = False
    actions: tuple[str, ...] = ()
    install: Callable[[AsyncApp, BotRuntime], None] | None = None
    rank: int = 50

    @property
    def usage(self) -> str:
        words = [self.name, *self.usage_args, *(f"[{o}=]" for o in self.options)]
        return " ".join(words + ([self.free_text] if self.free_text else []))

    def build(self, args: Args) -> JobRequest:
        params = get_kind(self.kind).params
        options = tuple((k, option_value(params, k, v)) for k, v in args.options.items())
        if self.free_text:
            if not args.text.strip():
                fail(self.missing_text or f"{self.name} needs {self.free_text}")
            request = JobRequest(self.name, options, text=args.text)
        else:
            words = args.positional(self.positional, self.examples[0])
            request = JobRequest(self.name, options, args=tuple(words))
        self.check(request)
        return request


JOB_SUBCOMMANDS: dict[str, JobSubcommand] = {}
PRESENTERS: dict[str, Presenter] = {}
DEFAULT_PRESENTER = Presenter()


def register_job_subcommand(sub: JobSubcommand) -> JobSubcommand:
    """Add a job sub-command to `/lm` and its kind's presentation to the reporter."""
    get_kind(sub.kind)  # a kind the engine knows
    register(Subcommand(
        sub.name, sub.usage, sub.description, sub.examples, sub.role, sub.build,
        options=field_options(get_kind(sub.kind).params, sub.options),
        free_text=sub.free_text is not None, aliases=sub.aliases, doing=sub.doing,
        job_kind=sub.kind, rank=sub.rank, actions=sub.actions))
    JOB_SUBCOMMANDS[sub.name] = sub
    PRESENTERS[sub.kind] = sub.presenter
    return sub


def presenter_for(kind: str) -> Presenter:
    """How jobs of `kind` look in Slack (a live status message where the kind says nothing)."""
    return PRESENTERS.get(kind, DEFAULT_PRESENTER)

