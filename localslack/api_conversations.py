"""Web API methods about conversations, people and reactions (``conversations.*``,
``users.*``, ``reactions.*``); registered into :data:`localslack.api_base.METHODS`."""

from __future__ import annotations

from .api_base import ApiError, Params, _channel, _page, method
from .models import JSON
from .state import Workspace


@method("conversations.history")
def conversations_history(ws: Workspace, p: Params) -> JSON:
    channel = _channel(ws, p)
    try:
        messages = ws.history(channel, latest=p.str("latest"), oldest=p.str("oldest"),
                              inclusive=p.bool("inclusive"))
    except ValueError:
        raise ApiError("invalid_ts_latest") from None
    page, following = _page(messages, p)
    return {"messages": [ws.message_json(m) for m in page], "has_more": bool(following),
            "pin_count": 0, "response_metadata": {"next_cursor": following}}


@method("conversations.replies")
def conversations_replies(ws: Workspace, p: Params) -> JSON:
    channel = _channel(ws, p)
    thread = ws.replies(channel, p.str("ts", required=True, error="thread_not_found"))
    page, following = _page(thread, p, default=1000)
    return {"messages": [ws.message_json(m) for m in page], "has_more": bool(following),
            "response_metadata": {"next_cursor": following}}


@method("conversations.info")
def conversations_info(ws: Workspace, p: Params) -> JSON:
    channel = ws.resolve_channel(p.str("channel", required=True, error="channel_not_found"))
    if channel is None:
        raise ApiError("channel_not_found")
    return {"channel": ws.channel_json(channel)}


@method("conversations.list")
def conversations_list(ws: Workspace, p: Params) -> JSON:
    types = set((p.str("types") or "public_channel").split(","))
    channels = ws.list_channels()
    chosen = [c for c in channels
              if ("im" in types and c.is_im)
              or ("public_channel" in types and not c.is_im and not c.is_private)
              or ("private_channel" in types and c.is_private and ws.bot_user_id in c.members)]
    if p.bool("exclude_archived"):
        chosen = [c for c in chosen if not c.is_archived]
    page, following = _page(chosen, p)
    return {"channels": [ws.channel_json(c) for c in page],
            "response_metadata": {"next_cursor": following}}


@method("conversations.open")
def conversations_open(ws: Workspace, p: Params) -> JSON:
    if p.str("channel"):
        channel = ws.resolve_channel(_channel(ws, p))
        assert channel is not None
        return {"channel": ws.channel_json(channel)}
    users = [u for u in (p.str("users", required=True, error="users_list_not_supplied")
                         .split(",")) if u and u != ws.bot_user_id]
    if len(users) != 1:
        raise ApiError("not_supported")
    if ws.get_user(users[0]) is None:
        raise ApiError("user_not_found")
    existed = any(c.is_im and c.user == users[0] for c in ws.list_channels())
    channel = ws.open_dm(users[0])
    shape = ws.channel_json(channel) if p.bool("return_im") else {"id": channel.id}
    return {"no_op": existed, "already_open": existed, "channel": shape}


@method("conversations.members")
def conversations_members(ws: Workspace, p: Params) -> JSON:
    channel = ws.get_channel(_channel(ws, p))
    return {"members": list(channel.members) if channel else [],
            "response_metadata": {"next_cursor": ""}}


@method("users.info")
def users_info(ws: Workspace, p: Params) -> JSON:
    user = ws.get_user(p.str("user", required=True, error="user_not_found"))
    if user is None:
        raise ApiError("user_not_found")
    return {"user": ws.user_json(user)}


@method("users.list")
def users_list(ws: Workspace, p: Params) -> JSON:
    users = ws.list_users()
    page, following = _page(users, p)
    return {"members": [ws.user_json(u) for u in page],
            "response_metadata": {"next_cursor": following}}


def _reaction_args(ws: Workspace, p: Params) -> tuple[str, str, str]:
    channel = _channel(ws, p)
    ts = p.str("timestamp", required=True, error="message_not_found")
    name = (p.str("name", required=True, error="invalid_name") or "").strip(":")
    if not name:
        raise ApiError("invalid_name")
    return channel, ts, name


@method("reactions.add")
def reactions_add(ws: Workspace, p: Params) -> JSON:
    channel, ts, name = _reaction_args(ws, p)
    ws.add_reaction(channel, ts, name, user=ws.bot_user_id)
    return {}


@method("reactions.remove")
def reactions_remove(ws: Workspace, p: Params) -> JSON:
    channel, ts, name = _reaction_args(ws, p)
    ws.remove_reaction(channel, ts, name, user=ws.bot_user_id)
    return {}
