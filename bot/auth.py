"""Authorization as a Bolt global middleware.

For every request it resolves the Slack team to its storage workspace, parses a `/lm` command
(the parsed `Command`, or the `CommandError`, goes into the context for the listener), works
out what the request would do and which role that needs (`bot.commands.ROLES`), and looks up
the user's role (`LMOPS_ADMINS`, else storage). A refused request never reaches a listener:
it is answered with `refused_blocks`, which say who may do it.
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
from bot.commands import SUBCOMMANDS, CommandError, allows, parse
from bot.runtime import REQUEST_INFO, BotRuntime, request_type
from storage import queue

log = logging.getLogger(__name__)



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
    return int(text) if text.isdigit() else None


def intent_of(body: dict[str, Any], context: AsyncBoltContext) -> Intent | None:
    """The intent of a request; None when anyone may make it. Stores the parsed command (or
    its error) in `context["lm_command"]` / `context["lm_error"]`."""
    if body.get("command"):
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
        actions = button_actions()
        for action in body.get("actions") or []:
            if action.get("action_id") in actions:
                words, role = actions[action["action_id"]]
                job_id = _job_id(action.get("value")) if role == "owner-or-admin" else None
                return Intent(words, role, job_id)
    return None


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
        team = context.team_id or context.enterprise_id
        if not team:
            return await next()
        context["lm_team"] = team
        context["lm_workspace_id"] = workspace_id = await rt.store.workspace_id(team)
        intent = intent_of(body, context)
        if intent is None:
            return await next()
        user = context.user_id or ""
        role = await rt.store.role(workspace_id, user)
        context["lm_role"] = role
        is_owner = False
        if intent.required == "owner-or-admin" and intent.job_id is not None and role != "admin":
            job = await rt.store.find(queue.get_job, job_id=intent.job_id,
                                      workspace_id=workspace_id)
            if job is None:  # nothing to protect; the listener says it isn't there
                return await next()
            is_owner = job.user_id == user
        if allows(intent.required, role, is_owner=is_owner):
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
