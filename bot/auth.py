"""Authorization as a Bolt global middleware.

For every request it checks the request's shape, resolves the Slack team to its storage
workspace, parses a `/lm` command (the parsed `Command`, or the `CommandError`, goes into the
context for the listener), works out what the request would do and which role that needs
(`bot.commands.ROLES`), and looks up the user's role (`LMOPS_ADMINS`, else storage). A refused
request never reaches a listener: it is answered with `refused_blocks`, which say who may do it.

Bolt routes by more than the shapes lmops sends: `@app.action("lmops_cancel")` also runs for a
legacy attachment action (`interactive_message`) or a `dialog_submission` whose `callback_id`
is "lmops_cancel". So the middleware takes only what lmops sends and receives (`SHAPES`) and
answers anything else with HTTP 400 before any listener; and each listener that changes
something is registered with `checked(key)`, which lets it run only for a request this
middleware authorized for that same listener (`context["lm_checked"]`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.response import BoltResponse

from bot.blocks import fallback_text, refused_blocks
from bot.commands import MAX_JOB_ID, SUBCOMMANDS, CommandError, allows, parse
from bot.runtime import REQUEST_INFO, BotRuntime, request_type
from storage import queue

log = logging.getLogger(__name__)
#: The key `checked` guards the `/lm` listener with (buttons use their action id).
COMMAND_KEY = "/lm"
#: The request shapes lmops takes (see `shape_of`).
SHAPES = ("command", "block_actions", "event")
REFUSED_SHAPE = "lmops takes slash commands, block_actions and events only"


def shape_of(body: dict[str, Any]) -> str | None:
    """`command` (a slash command: `command` set and no `type`), `block_actions` (one click
    on a button, without `command`), `event` (an Events API delivery), or None for shapes
    lmops never sends nor asks for (`interactive_message`, `dialog_submission`,
    `view_submission`, shortcuts, or a mix such as `block_actions` with `command`). Bolt
    answers `url_verification` and `ssl_check` before the middleware sees them."""
    kind = body.get("type")
    if "command" in body:
        return "command" if kind is None and body.get("command") else None
    if kind == "block_actions":
        actions = body.get("actions")
        ok = isinstance(actions, list) and len(actions) == 1 and isinstance(actions[0], dict)
        return "block_actions" if ok else None
    if kind == "event_callback":
        return "event"
    return None


def button_actions() -> dict[str, tuple[str, str]]:
    """What each button does (for the refusal message) and the role it needs: those of the
    sub-command that does the same thing."""
    return {action: (sub.action_words, sub.role) for sub in SUBCOMMANDS.values()
            for action in sub.actions}


@dataclass(frozen=True)
class Intent:
    """What a request would do: the words for a refusal, the role it needs, and for
    owner-or-admin actions the job it concerns."""

    action: str
    required: str
    job_id: int | None = None


def _job_id(value: Any) -> int | None:
    text = str(value or "").removeprefix("#")
    ok = text.isascii() and text.isdigit() and len(text) <= len(str(MAX_JOB_ID))
    return int(text) if ok and int(text) <= MAX_JOB_ID else None


def intent_of(body: dict[str, Any], context: AsyncBoltContext) -> Intent | None:
    """The intent of a request of a shape `shape_of` takes; None when anyone may make it.
    Stores the parsed command (or its error) in `context["lm_command"]` /
    `context["lm_error"]`, and the listener the request is for in `context["lm_for"]`."""
    if "command" in body:
        context["lm_for"] = COMMAND_KEY
        try:
            command = parse(body.get("text") or "")
        except CommandError as error:
            context["lm_error"] = error
            return None
        context["lm_command"] = command
        if command.role == "anyone":
            return None
        words = SUBCOMMANDS[command.name].action_words
        return Intent(words, command.role, getattr(command, "job_id", None))
    if body.get("type") == "block_actions":
        action = (body.get("actions") or [{}])[0]  # the one Bolt routes and the listener reads
        action_id = context["lm_for"] = str(action.get("action_id") or "")
        actions = button_actions()
        if action_id in actions:
            words, role = actions[action_id]
            job_id = _job_id(action.get("value")) if role == "owner-or-admin" else None
            return Intent(words, role, job_id)
    return None


def checked(key: str) -> Callable[..., Awaitable[BoltResponse | None]]:
    """A listener middleware: the listener runs only for a request that the authorization
    middleware checked for `key` (the `/lm` listener's `COMMAND_KEY`, or a button's action
    id), whatever else Bolt would match it on."""

    async def only_when_checked(context: AsyncBoltContext,
                                next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        if context.get("lm_checked") != key:
            log.warning("refused a request for %s that was not authorized for it", key)
            return BoltResponse(status=400, body=REFUSED_SHAPE)
        return await next()

    return only_when_checked


def install(app: AsyncApp, rt: BotRuntime) -> None:
    """Add the authorization middleware to `app`."""

    @app.middleware
    async def authorize(body: dict[str, Any], context: AsyncBoltContext, ack: AsyncAck,
                        respond: AsyncRespond,
                        next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        info = REQUEST_INFO.get()
        if info is not None:
            info["type"] = request_type(body)
        context["lm"] = rt
        shape = shape_of(body)
        team = context.team_id or context.enterprise_id
        if shape is None or (not team and shape != "event"):
            log.warning("refused a %s request (not a shape lmops takes)", request_type(body))
            return BoltResponse(status=400, body=REFUSED_SHAPE)
        if not team:
            return await next()
        context["lm_team"] = team
        context["lm_workspace_id"] = workspace_id = await rt.store.workspace_id(team)
        intent = intent_of(body, context)
        if intent is None:
            context["lm_checked"] = context.get("lm_for")
            return await next()
        user = context.user_id or ""
        role = await rt.store.role(workspace_id, user)
        context["lm_role"] = role
        is_owner = False
        if intent.required == "owner-or-admin" and intent.job_id is not None and role != "admin":
            job = await rt.store.find(queue.get_job, job_id=intent.job_id,
                                      workspace_id=workspace_id)
            if job is None:  # nothing to protect; the listener says it isn't there
                context["lm_checked"] = context.get("lm_for")
                return await next()
            is_owner = job.user_id == user
        if allows(intent.required, role, is_owner=is_owner):
            context["lm_checked"] = context.get("lm_for")
            return await next()
        log.info("refused %s to %s (%s) in %s", intent.action, user, role, team)
        blocks = refused_blocks(intent.action, intent.required)
        if body.get("command"):
            return await ack(text=fallback_text(blocks), blocks=blocks, response_type="ephemeral")
        response = await ack()
        if context.response_url:
            rt.spawn(respond(text=fallback_text(blocks), blocks=blocks,
                             response_type="ephemeral", replace_original=False),
                     name="refusal")
        return response
