"""The payloads Slack sends to an app, built from the local workspace (pure functions).

Shapes follow Slack's documentation and what bolt-python's tests feed Bolt: slash-command
forms, ``event_callback`` envelopes with ``authorizations``, ``block_actions`` payloads.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

from .models import JSON, File, Message
from .state import Workspace

VERIFICATION_TOKEN = "localslack-verification-token"


def new_trigger_id() -> str:
    """A ``trigger_id`` like Slack's (``1234567890.123.abcdef...``)."""
    return f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"


def new_event_id() -> str:
    """A unique ``event_id`` (``Ev`` and 16 characters)."""
    return "Ev" + uuid.uuid4().hex[:16].upper()


def slash_command_form(ws: Workspace, *, text: str, user: str, channel: str, command: str,
                       response_url: str, trigger_id: str) -> dict[str, str]:
    """The form fields of a slash command request."""
    found = ws.get_channel(channel)
    person = ws.get_user(user)
    channel_name = ("directmessage" if found and found.is_im else found.name if found else channel)
    return {
        "token": VERIFICATION_TOKEN, "team_id": ws.team.id, "team_domain": ws.team.domain,
        "channel_id": channel, "channel_name": channel_name, "user_id": user,
        "user_name": person.name if person else user, "command": command, "text": text,
        "api_app_id": ws.app_id, "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": trigger_id,
    }


def event_callback(ws: Workspace, event: JSON, *, event_id: str | None = None,
                   event_time: int | None = None) -> JSON:
    """Wrap an event the way the Events API delivers it."""
    return {
        "token": VERIFICATION_TOKEN, "team_id": ws.team.id, "context_team_id": ws.team.id,
        "api_app_id": ws.app_id, "event": event, "type": "event_callback",
        "event_id": event_id or new_event_id(), "event_time": event_time or int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": ws.team.id,
                            "user_id": ws.bot_user_id, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False, "event_context": "4-" + secrets.token_hex(24),
    }


def message_event(ws: Workspace, message: Message) -> JSON:
    """A ``message`` event for a message someone posted (``file_share`` ones included)."""
    event: JSON = {"type": "message", "channel": message.channel, "user": message.user,
                   "text": message.text, "ts": message.ts, "event_ts": message.ts,
                   "team": ws.team.id, "channel_type": ws.channel_type(message.channel)}
    if message.subtype:
        event["subtype"] = message.subtype
    else:
        event["client_msg_id"] = str(uuid.uuid4())
    if message.thread_ts and message.thread_ts != message.ts:
        event["thread_ts"] = message.thread_ts
        event["parent_user_id"] = message.parent_user_id
    if message.files:
        event["files"] = ws.message_json(message).get("files", [])
        event["upload"] = False
        event["display_as_bot"] = False
    return event


def app_mention_event(ws: Workspace, message: Message) -> JSON:
    """An ``app_mention`` event for a message that mentions the bot."""
    event: JSON = {"type": "app_mention", "user": message.user, "text": message.text,
                   "ts": message.ts, "channel": message.channel, "event_ts": message.ts,
                   "team": ws.team.id, "client_msg_id": str(uuid.uuid4())}
    if message.thread_ts and message.thread_ts != message.ts:
        event["thread_ts"] = message.thread_ts
    return event


def file_shared_event(ws: Workspace, file: File, *, channel: str, user: str,
                      event_ts: str) -> JSON:
    """A ``file_shared`` event (it carries only the file's id: the app calls ``files.info``)."""
    return {"type": "file_shared", "channel_id": channel, "file_id": file.id,
            "user_id": user, "file": {"id": file.id}, "event_ts": event_ts}


def reaction_added_event(ws: Workspace, *, reaction: str, user: str, message: Message) -> JSON:
    """A ``reaction_added`` event for a reaction on a message."""
    return {"type": "reaction_added", "user": user, "reaction": reaction,
            "item_user": message.user,
            "item": {"type": "message", "channel": message.channel, "ts": message.ts},
            "event_ts": ws.next_ts()}


def find_action(blocks: list[JSON] | None, action_id: str) -> tuple[str, JSON] | None:
    """The ``(block_id, element)`` of the interactive element with ``action_id``."""
    for block in blocks or []:
        elements: list[Any] = list(block.get("elements") or [])
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block.get("block_id") or ""), element
    return None


def block_actions_payload(ws: Workspace, *, user: str, channel: str, message_ts: str,
                          action: JSON, response_url: str, trigger_id: str,
                          message: JSON | None) -> JSON:
    """The ``block_actions`` payload of one click; ``message`` is None for ephemeral ones."""
    person = ws.get_user(user)
    found = ws.get_channel(channel)
    name = person.name if person else user
    payload: JSON = {
        "type": "block_actions",
        "user": {"id": user, "username": name, "name": name, "team_id": ws.team.id},
        "api_app_id": ws.app_id, "token": VERIFICATION_TOKEN,
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                      "is_ephemeral": message is None},
        "trigger_id": trigger_id, "team": {"id": ws.team.id, "domain": ws.team.domain},
        "enterprise": None, "is_enterprise_install": False,
        "channel": {"id": channel, "name": ("directmessage" if found and found.is_im
                                            else found.name if found else channel)},
        "state": {"values": {}}, "response_url": response_url, "actions": [action],
    }
    if message is not None:
        payload["message"] = message
    return payload
