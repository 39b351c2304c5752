"""The records of the local workspace and their Slack Web API shapes.

Plain dataclasses; :class:`localslack.state.Workspace` owns them and hands out copies.
``*_to_api`` functions render them the way the Slack Web API does, so both the server and the
event deliveries use one rendering.
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ADMIN_USER_ID = "U_ADMIN"
BOT_USER_ID = "U_BOT"
BOT_ID = "B_BOT"
APP_ID = "A_LMOPS"
GENERAL_CHANNEL_ID = "C_GENERAL"
RANDOM_CHANNEL_ID = "C_RANDOM"
ADMIN_DM_ID = "D_ADMIN"

JSON = dict[str, Any]


@dataclass
class Team:
    """The workspace (team) itself."""

    id: str = "T_LOCAL"
    name: str = "lmops dev"
    domain: str = "lmops-dev"


@dataclass
class User:
    """A member of the workspace; the bot is a user with ``is_bot`` and a ``bot_id``."""

    id: str
    name: str
    real_name: str = ""
    is_admin: bool = False
    is_bot: bool = False
    bot_id: str | None = None
    tz: str = "UTC"


@dataclass
class Channel:
    """A public or private channel, or a DM (``is_im``, with the other member in ``user``)."""

    id: str
    name: str
    is_im: bool = False
    is_private: bool = False
    user: str | None = None
    members: list[str] = field(default_factory=list)
    created: int = field(default_factory=lambda: int(time.time()))
    topic: str = ""
    purpose: str = ""
    is_archived: bool = False


@dataclass
class Reaction:
    """One emoji on a message and who added it."""

    name: str
    users: list[str] = field(default_factory=list)


@dataclass
class Message:
    """A message in a channel (a thread reply when ``thread_ts`` differs from ``ts``)."""

    ts: str
    channel: str
    text: str = ""
    user: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    subtype: str | None = None
    blocks: list[JSON] | None = None
    attachments: list[JSON] | None = None
    thread_ts: str | None = None
    reply_count: int = 0
    reply_users: list[str] = field(default_factory=list)
    latest_reply: str | None = None
    parent_user_id: str | None = None
    reply_broadcast: bool = False
    edited: JSON | None = None
    reactions: list[Reaction] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    metadata: JSON | None = None
    username: str | None = None
    icon_emoji: str | None = None
    streaming: bool = False


@dataclass
class File:
    """An uploaded file; ``content`` is None until its bytes arrive (files upload v2, step 2)."""

    id: str
    name: str
    user: str
    title: str = ""
    mimetype: str = "application/octet-stream"
    size: int = 0
    content: bytes | None = None
    created: int = field(default_factory=lambda: int(time.time()))
    channels: list[str] = field(default_factory=list)
    shares: dict[str, list[str]] = field(default_factory=dict)
    alt_txt: str | None = None
    upload_id: str | None = None
    complete: bool = False

    @property
    def filetype(self) -> str:
        """Slack's short file type: the extension, lower-case (``csv``, ``png``...)."""
        _, dot, ext = self.name.rpartition(".")
        return ext.lower() if dot else "binary"


@dataclass
class Ephemeral:
    """A message only ``user`` sees; never part of ``conversations.history``."""

    ts: str
    channel: str
    user: str
    text: str = ""
    blocks: list[JSON] | None = None
    attachments: list[JSON] | None = None
    thread_ts: str | None = None
    bot_id: str | None = BOT_ID
    deleted: bool = False


@dataclass
class ResponseUrl:
    """A ``response_url`` handed to the app: where a reply to a command or click goes."""

    id: str
    channel: str
    user: str
    message_ts: str | None = None
    ephemeral: bool = False
    uses: int = 0
    created: float = field(default_factory=time.time)


@dataclass
class ApiCall:
    """One request the server received: a Web API method, an upload, a download, a response_url."""

    method: str
    params: JSON
    headers: dict[str, str]
    status: int = 200
    error: str | None = None
    response: JSON | None = None
    at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        """True when the server answered ``ok: true``."""
        return self.status < 400 and self.error is None


@dataclass
class DeliveryRecord:
    """One thing sent to the app: slash command, event, interaction, over HTTP or Socket Mode."""

    kind: str
    payload: JSON
    via: str
    status: int
    body: str = ""
    retry_num: int = 0
    at: float = field(default_factory=time.time)


def guess_mimetype(name: str) -> str:
    """Slack's mimetype for a file name; data files get the types Slack gives them."""
    ext = name.rpartition(".")[2].lower()
    special = {"csv": "text/csv", "tsv": "text/tab-separated-values", "jsonl": "application/x-ndjson"}
    if ext in special:
        return special[ext]
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def user_to_api(user: User, team: Team) -> JSON:
    """``users.info``'s ``user`` object."""
    profile: JSON = {
        "real_name": user.real_name or user.name,
        "display_name": user.name,
        "image_48": "",
        "team": team.id,
    }
    if user.bot_id:
        profile["bot_id"] = user.bot_id
    return {
        "id": user.id,
        "team_id": team.id,
        "name": user.name,
        "real_name": user.real_name or user.name,
        "deleted": False,
        "is_admin": user.is_admin,
        "is_owner": user.is_admin,
        "is_bot": user.is_bot,
        "is_app_user": False,
        "tz": user.tz,
        "profile": profile,
    }


def channel_to_api(channel: Channel, team: Team) -> JSON:
    """``conversations.info``'s ``channel`` object."""
    if channel.is_im:
        return {
            "id": channel.id,
            "created": channel.created,
            "is_im": True,
            "is_org_shared": False,
            "user": channel.user,
            "is_user_deleted": False,
            "context_team_id": team.id,
        }
    return {
        "id": channel.id,
        "name": channel.name,
        "name_normalized": channel.name,
        "is_channel": not channel.is_private,
        "is_group": channel.is_private,
        "is_im": False,
        "is_mpim": False,
        "is_private": channel.is_private,
        "is_archived": channel.is_archived,
        "is_general": channel.name == "general",
        "is_member": BOT_USER_ID in channel.members,
        "created": channel.created,
        "creator": ADMIN_USER_ID,
        "context_team_id": team.id,
        "num_members": len(channel.members),
        "topic": {"value": channel.topic, "creator": "", "last_set": 0},
        "purpose": {"value": channel.purpose, "creator": "", "last_set": 0},
    }


def file_to_api(file: File, team: Team, base_url: str) -> JSON:
    """``files.info``'s ``file`` object; the URLs point at the local server."""
    private = f"{base_url}/files-pri/{team.id}-{file.id}/{file.name}"
    return {
        "id": file.id,
        "created": file.created,
        "timestamp": file.created,
        "name": file.name,
        "title": file.title or file.name,
        "mimetype": file.mimetype,
        "filetype": file.filetype,
        "pretty_type": file.filetype.upper(),
        "user": file.user,
        "user_team": team.id,
        "mode": "hosted",
        "editable": False,
        "is_external": False,
        "is_public": bool(file.channels),
        "size": file.size,
        "url_private": private,
        "url_private_download": f"{base_url}/files-pri/{team.id}-{file.id}/download/{file.name}",
        "permalink": f"{base_url}/files/{file.user}/{file.id}/{file.name}",
        "channels": list(file.channels),
        "groups": [],
        "ims": [],
        "shares": {"public": {c: [{"ts": ts} for ts in tss] for c, tss in file.shares.items()}},
        "alt_txt": file.alt_txt,
        "file_access": "visible",
    }


def message_to_api(
    message: Message, team: Team, base_url: str, files: Mapping[str, File] | None = None
) -> JSON:
    """A message as ``conversations.history`` and ``chat.postMessage`` render it."""
    out: JSON = {"type": "message", "ts": message.ts, "text": message.text, "team": team.id}
    for key in ("user", "bot_id", "app_id", "subtype", "username", "icon_emoji"):
        value = getattr(message, key)
        if value is not None:
            out[key] = value
    if message.blocks is not None:
        out["blocks"] = message.blocks
    if message.attachments is not None:
        out["attachments"] = message.attachments
    if message.metadata is not None:
        out["metadata"] = message.metadata
    if message.thread_ts:
        out["thread_ts"] = message.thread_ts
        if message.thread_ts == message.ts:
            out["reply_count"] = message.reply_count
            out["reply_users"] = list(message.reply_users)
            out["reply_users_count"] = len(message.reply_users)
            out["latest_reply"] = message.latest_reply
        else:
            out["parent_user_id"] = message.parent_user_id
    if message.edited is not None:
        out["edited"] = message.edited
    if message.reactions:
        out["reactions"] = [
            {"name": r.name, "users": list(r.users), "count": len(r.users)} for r in message.reactions
        ]
    if message.files and files is not None:
        out["files"] = [file_to_api(files[f], team, base_url) for f in message.files if f in files]
        out["upload"] = False
    if message.bot_id:
        out["bot_profile"] = {"id": message.bot_id, "app_id": message.app_id, "name": "lmops"}
    return out


def ephemeral_to_api(ephemeral: Ephemeral) -> JSON:
    """An ephemeral message as the local UI and tests see it."""
    out: JSON = {"type": "message", "ts": ephemeral.ts, "text": ephemeral.text,
                 "user": ephemeral.user, "channel": ephemeral.channel, "is_ephemeral": True}
    for key in ("blocks", "attachments", "thread_ts", "bot_id"):
        value = getattr(ephemeral, key)
        if value is not None:
            out[key] = value
    return out
