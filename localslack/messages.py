"""Messages, threads, reactions and ephemeral messages of the local workspace.

A mixin of :class:`localslack.state.Workspace`: it uses the workspace's lock, its
``_mutate`` context (which notifies waiters and listeners) and its timestamp clock.
"""

from __future__ import annotations

import copy
import threading
from contextlib import AbstractContextManager
from typing import Any

from .models import JSON, Channel, Ephemeral, File, Message, Reaction


class WorkspaceError(Exception):
    """A request the workspace refuses; ``error`` is Slack's error code (``message_not_found``)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


_UNSET: Any = object()


class MessageStore:
    """Message operations; every method is thread-safe and returns copies."""

    _lock: threading.RLock
    channels: dict[str, Channel]
    messages: dict[str, list[Message]]
    files: dict[str, File]
    ephemerals: list[Ephemeral]

    def _mutate(self) -> AbstractContextManager[list[tuple[str, JSON]]]:
        raise NotImplementedError

    def next_ts(self) -> str:
        raise NotImplementedError

    def _find(self, channel: str, ts: str) -> Message:
        if channel not in self.channels:
            raise WorkspaceError("channel_not_found")
        for message in self.messages[channel]:
            if message.ts == ts:
                return message
        raise WorkspaceError("message_not_found")

    def post_message(self, channel: str, *, text: str = "", user: str | None = None,
                     bot_id: str | None = None, app_id: str | None = None,
                     blocks: list[JSON] | None = None, attachments: list[JSON] | None = None,
                     thread_ts: str | None = None, reply_broadcast: bool = False,
                     subtype: str | None = None, files: list[str] | None = None,
                     metadata: JSON | None = None, username: str | None = None,
                     icon_emoji: str | None = None, streaming: bool = False) -> Message:
        """Add a message (a reply when ``thread_ts`` names a message of the channel)."""
        with self._mutate() as changes:
            if channel not in self.channels:
                raise WorkspaceError("channel_not_found")
            message = Message(ts=self.next_ts(), channel=channel, text=text, user=user,
                              bot_id=bot_id, app_id=app_id, subtype=subtype, blocks=blocks,
                              attachments=attachments, reply_broadcast=reply_broadcast,
                              files=list(files or []), metadata=metadata, username=username,
                              icon_emoji=icon_emoji, streaming=streaming)
            if thread_ts:
                try:
                    parent = self._find(channel, thread_ts)
                except WorkspaceError:
                    raise WorkspaceError("thread_not_found") from None
                if parent.thread_ts and parent.thread_ts != parent.ts:
                    parent = self._find(channel, parent.thread_ts)  # a reply to a reply
                parent.thread_ts = parent.ts
                parent.reply_count += 1
                parent.latest_reply = message.ts
                if user and user not in parent.reply_users:
                    parent.reply_users.append(user)
                message.thread_ts, message.parent_user_id = parent.ts, parent.user
            for file_id in message.files:
                file = self.files.get(file_id)
                if file is not None:
                    if channel not in file.channels:
                        file.channels.append(channel)
                    file.shares.setdefault(channel, []).append(message.ts)
            self.messages[channel].append(message)
            changes.append(("message", {"channel": channel, "ts": message.ts,
                                        "thread_ts": message.thread_ts}))
            return copy.deepcopy(message)

    def update_message(self, channel: str, ts: str, *, text: str | None = None,
                       blocks: list[JSON] | None = _UNSET, attachments: list[JSON] | None = _UNSET,
                       metadata: JSON | None = _UNSET, editor: str | None = None,
                       streaming: bool | None = None, append_text: str = "") -> Message:
        """Change a message; fields left out are kept, as ``chat.update`` does."""
        with self._mutate() as changes:
            message = self._find(channel, ts)
            if text is not None:
                message.text = text
            message.text += append_text
            if blocks is not _UNSET:
                message.blocks = blocks
            if attachments is not _UNSET:
                message.attachments = attachments
            if metadata is not _UNSET:
                message.metadata = metadata
            if streaming is not None:
                message.streaming = streaming
            if editor is not None:
                message.edited = {"user": editor, "ts": self.next_ts()}
            changes.append(("message_changed", {"channel": channel, "ts": ts}))
            return copy.deepcopy(message)

    def delete_message(self, channel: str, ts: str) -> Message:
        """Remove a message; a deleted parent's replies stay, as in Slack."""
        with self._mutate() as changes:
            message = self._find(channel, ts)
            self.messages[channel].remove(message)
            if message.thread_ts and message.thread_ts != message.ts:
                try:
                    parent = self._find(channel, message.thread_ts)
                    parent.reply_count = max(0, parent.reply_count - 1)
                except WorkspaceError:
                    pass
            changes.append(("message_deleted", {"channel": channel, "ts": ts}))
            return copy.deepcopy(message)

    def get_message(self, channel: str, ts: str) -> Message | None:
        """A copy of one message, or None."""
        with self._lock:
            try:
                return copy.deepcopy(self._find(channel, ts))
            except WorkspaceError:
                return None

    def history(self, channel: str, *, latest: str | None = None, oldest: str | None = None,
                inclusive: bool = False) -> list[Message]:
        """Top-level messages (and broadcast replies), newest first."""
        with self._lock:
            if channel not in self.channels:
                raise WorkspaceError("channel_not_found")

            def in_range(ts: str) -> bool:
                t = float(ts)
                after = oldest is None or (t >= float(oldest) if inclusive else t > float(oldest))
                before = latest is None or (t <= float(latest) if inclusive else t < float(latest))
                return after and before

            top = [m for m in self.messages[channel]
                   if (not m.thread_ts or m.thread_ts == m.ts or m.reply_broadcast)
                   and in_range(m.ts)]
            return [copy.deepcopy(m) for m in reversed(top)]

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        """A thread: its parent then the replies, oldest first (``thread_not_found``)."""
        with self._lock:
            try:
                parent = self._find(channel, thread_ts)
            except WorkspaceError as exc:
                raise WorkspaceError("thread_not_found" if exc.error == "message_not_found"
                                     else exc.error) from None
            root = parent.thread_ts or parent.ts
            thread = [m for m in self.messages[channel] if m.ts == root or m.thread_ts == root]
            return [copy.deepcopy(m) for m in thread]

    def thread_messages(self, channel: str | None = None) -> list[Message]:
        """All messages (replies included) of one channel or of every channel, oldest first."""
        with self._lock:
            keys = [channel] if channel else list(self.messages)
            found = [m for key in keys for m in self.messages.get(key, [])]
            return copy.deepcopy(sorted(found, key=lambda m: float(m.ts)))

    def add_reaction(self, channel: str, ts: str, name: str, *, user: str) -> Message:
        """Add ``:name:`` by ``user`` (``already_reacted`` the second time)."""
        with self._mutate() as changes:
            message = self._find(channel, ts)
            reaction = next((r for r in message.reactions if r.name == name), None)
            if reaction is None:
                reaction = Reaction(name=name)
                message.reactions.append(reaction)
            if user in reaction.users:
                raise WorkspaceError("already_reacted")
            reaction.users.append(user)
            changes.append(("reaction", {"channel": channel, "ts": ts, "name": name,
                                         "user": user, "added": True}))
            return copy.deepcopy(message)

    def remove_reaction(self, channel: str, ts: str, name: str, *, user: str) -> Message:
        """Take ``:name:`` by ``user`` off a message (``no_reaction`` if it wasn't there)."""
        with self._mutate() as changes:
            message = self._find(channel, ts)
            reaction = next((r for r in message.reactions if r.name == name), None)
            if reaction is None or user not in reaction.users:
                raise WorkspaceError("no_reaction")
            reaction.users.remove(user)
            if not reaction.users:
                message.reactions.remove(reaction)
            changes.append(("reaction", {"channel": channel, "ts": ts, "name": name,
                                         "user": user, "added": False}))
            return copy.deepcopy(message)

    def post_ephemeral(self, channel: str, user: str, *, text: str = "",
                       blocks: list[JSON] | None = None, attachments: list[JSON] | None = None,
                       thread_ts: str | None = None) -> Ephemeral:
        """Show a message to ``user`` only."""
        with self._mutate() as changes:
            if channel not in self.channels:
                raise WorkspaceError("channel_not_found")
            ephemeral = Ephemeral(ts=self.next_ts(), channel=channel, user=user, text=text,
                                  blocks=blocks, attachments=attachments, thread_ts=thread_ts)
            self.ephemerals.append(ephemeral)
            changes.append(("ephemeral", {"channel": channel, "ts": ephemeral.ts, "user": user}))
            return copy.deepcopy(ephemeral)

    def replace_ephemeral(self, ts: str, *, text: str = "", blocks: list[JSON] | None = None,
                          attachments: list[JSON] | None = None,
                          delete: bool = False) -> Ephemeral:
        """Replace (or delete) an ephemeral message, as a ``response_url`` may."""
        with self._mutate() as changes:
            for ephemeral in self.ephemerals:
                if ephemeral.ts == ts and not ephemeral.deleted:
                    if delete:
                        ephemeral.deleted = True
                    else:
                        ephemeral.text, ephemeral.blocks = text, blocks
                        ephemeral.attachments = attachments
                    changes.append(("ephemeral", {"channel": ephemeral.channel, "ts": ts,
                                                  "user": ephemeral.user}))
                    return copy.deepcopy(ephemeral)
        raise WorkspaceError("message_not_found")

    def ephemerals_for(self, user: str | None = None, channel: str | None = None) -> list[Ephemeral]:
        """Live ephemeral messages, oldest first, optionally for one user and channel."""
        with self._lock:
            return [copy.deepcopy(e) for e in self.ephemerals
                    if not e.deleted and user in (None, e.user) and channel in (None, e.channel)]

    def find_ephemeral(self, ts: str) -> Ephemeral | None:
        """A live ephemeral message by its ts."""
        with self._lock:
            found = [e for e in self.ephemerals if e.ts == ts and not e.deleted]
            return copy.deepcopy(found[0]) if found else None
