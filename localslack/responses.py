"""What Slack does with a reply to a command or a click: a ``response_url`` POST, or the body
of the app's acknowledgement of a slash command.
"""

from __future__ import annotations

from typing import Any

from .messages import WorkspaceError
from .models import JSON
from .state import Workspace


def apply_response(ws: Workspace, body: JSON, *, channel: str, user: str,
                   message_ts: str | None = None, ephemeral: bool = False) -> JSON:
    """Apply a reply: ``delete_original``, ``replace_original`` (the message that was clicked),
    ``response_type: in_channel`` (a message everyone sees) or, by default, an ephemeral
    message to ``user``. Returns ``{"kind", "ts"}`` of what changed; raises
    :class:`WorkspaceError` with ``no_text`` or ``message_not_found``.
    """
    text = str(body.get("text") or "")
    blocks: Any = body.get("blocks") or None
    attachments: Any = body.get("attachments") or None
    thread_ts = body.get("thread_ts")
    if body.get("delete_original"):
        if message_ts is None:
            raise WorkspaceError("message_not_found")
        if ephemeral:
            ws.replace_ephemeral(message_ts, delete=True)
        else:
            ws.delete_message(channel, message_ts)
        return {"kind": "deleted", "ts": message_ts}
    if not text and not blocks and not attachments:
        raise WorkspaceError("no_text")
    if _truthy(body.get("replace_original")) and message_ts is not None:
        if ephemeral:
            ws.replace_ephemeral(message_ts, text=text, blocks=blocks, attachments=attachments)
        else:
            ws.update_message(channel, message_ts, text=text, blocks=blocks,
                              attachments=attachments, editor=ws.bot_user_id)
        return {"kind": "replaced", "ts": message_ts}
    if body.get("response_type") == "in_channel":
        message = ws.post_message(channel, text=text, user=ws.bot_user_id, bot_id=ws.bot_id,
                                  app_id=ws.app_id, blocks=blocks, attachments=attachments,
                                  thread_ts=thread_ts)
        return {"kind": "in_channel", "ts": message.ts}
    posted = ws.post_ephemeral(channel, user, text=text, blocks=blocks,
                               attachments=attachments, thread_ts=thread_ts)
    return {"kind": "ephemeral", "ts": posted.ts}


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"
