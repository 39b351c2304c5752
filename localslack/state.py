"""An in-memory Slack workspace: team, users, channels, messages, files, and what happened.

Thread-safe: every method takes one re-entrant lock and returns copies, so the server (on its
own event loop, maybe in another thread), the deliveries and test code can share one
:class:`Workspace`. Observers (:meth:`Workspace.subscribe`) hear about every change, which is
what a live browser view needs; tests wait for something with :meth:`Workspace.wait_for`.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from .messages import MessageStore, WorkspaceError
from .models import (
    ADMIN_DM_ID,
    ADMIN_USER_ID,
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    GENERAL_CHANNEL_ID,
    JSON,
    RANDOM_CHANNEL_ID,
    ApiCall,
    Channel,
    DeliveryRecord,
    Ephemeral,
    File,
    Message,
    ResponseUrl,
    Team,
    User,
    channel_to_api,
    ephemeral_to_api,
    file_to_api,
    guess_mimetype,
    message_to_api,
    user_to_api,
)

T = TypeVar("T")
Listener = Callable[[str, JSON], None]


class Workspace(MessageStore):
    """One Slack team held in memory, with an admin user ``U_ADMIN`` ("you") and the bot."""

    def __init__(self, team: Team | None = None, *, bot_name: str = "lmops",
                 admin_name: str = "you") -> None:
        self.team = team or Team()
        self.base_url = "http://127.0.0.1"
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._listeners: list[Listener] = []
        self._ids = itertools.count(1)
        self._last_us = 0
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.messages: dict[str, list[Message]] = {}
        self.files: dict[str, File] = {}
        self.ephemerals: list[Ephemeral] = []
        self.response_urls: dict[str, ResponseUrl] = {}
        self.api_calls: list[ApiCall] = []
        self.delivery_log: list[DeliveryRecord] = []
        self.add_user(admin_name, id=ADMIN_USER_ID, is_admin=True, real_name="You")
        self.add_user(bot_name, id=BOT_USER_ID, is_bot=True, bot_id=BOT_ID)
        members = [ADMIN_USER_ID, BOT_USER_ID]
        self.add_channel("general", id=GENERAL_CHANNEL_ID, members=members)
        self.add_channel("random", id=RANDOM_CHANNEL_ID, members=members)
        self.open_dm(ADMIN_USER_ID, id=ADMIN_DM_ID)

    bot_user_id = BOT_USER_ID
    bot_id = BOT_ID
    app_id = APP_ID
    admin_user_id = ADMIN_USER_ID

    # -- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _mutate(self) -> Iterator[list[tuple[str, JSON]]]:
        """Hold the lock while changing state; notify waiters and listeners afterwards."""
        changes: list[tuple[str, JSON]] = []
        with self._lock:
            yield changes
            self._cond.notify_all()
            listeners = list(self._listeners)
        for kind, data in changes:
            for listener in listeners:
                listener(kind, data)

    def new_id(self, prefix: str) -> str:
        """A fresh Slack-looking id (``C00000007``, ``F0000000A``...)."""
        return f"{prefix}{next(self._ids):08X}"

    def next_ts(self) -> str:
        """A message timestamp, strictly increasing across the workspace."""
        with self._lock:
            self._last_us = max(int(time.time() * 1_000_000), self._last_us + 1)
            return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(kind, data)`` after each change; returns a function that unsubscribes.

        Kinds: ``message``, ``message_changed``, ``message_deleted``, ``reaction``,
        ``ephemeral``, ``file``, ``api_call``, ``delivery``. Listeners run in the thread that
        made the change and must not block.
        """
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Block until ``predicate()`` is truthy (re-checked after each change); return it.

        Raises ``TimeoutError`` after ``timeout`` seconds. For code on an event loop whose
        changes come from the same loop, use :meth:`async_wait_for`.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = predicate()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"condition not met within {timeout} s")
                self._cond.wait(left)

    async def async_wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Like :meth:`wait_for`, without blocking the running event loop."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            await asyncio.sleep(0.01)

    # -- people and conversations --------------------------------------------------------

    def add_user(self, name: str, *, id: str | None = None, is_admin: bool = False,
                 is_bot: bool = False, bot_id: str | None = None, real_name: str = "",
                 join_all: bool = True) -> User:
        """Add a member (by default to every public channel) and return a copy of it."""
        with self._mutate():
            user = User(id=id or self.new_id("U"), name=name, real_name=real_name,
                        is_admin=is_admin, is_bot=is_bot, bot_id=bot_id)
            self.users[user.id] = user
            if join_all:
                for channel in self.channels.values():
                    if not channel.is_im and not channel.is_private:
                        channel.members.append(user.id)
            return copy.deepcopy(user)

    def add_channel(self, name: str, *, id: str | None = None, members: list[str] | None = None,
                    is_private: bool = False) -> Channel:
        """Create a channel; ``members`` defaults to everyone."""
        with self._mutate():
            channel = Channel(id=id or self.new_id("G" if is_private else "C"), name=name,
                              is_private=is_private,
                              members=list(members if members is not None else self.users))
            self.channels[channel.id] = channel
            self.messages[channel.id] = []
            return copy.deepcopy(channel)

    def open_dm(self, user_id: str, *, id: str | None = None) -> Channel:
        """The DM between ``user_id`` and the bot, created on first use."""
        with self._mutate():
            for channel in self.channels.values():
                if channel.is_im and channel.user == user_id:
                    return copy.deepcopy(channel)
            if user_id not in self.users:
                raise WorkspaceError("user_not_found")
            channel = Channel(id=id or self.new_id("D"), name=user_id, is_im=True, user=user_id,
                              members=[user_id, BOT_USER_ID])
            self.channels[channel.id] = channel
            self.messages[channel.id] = []
            return copy.deepcopy(channel)

    def get_user(self, user_id: str) -> User | None:
        """A copy of the user, or None."""
        with self._lock:
            return copy.deepcopy(self.users.get(user_id))

    def get_channel(self, channel_id: str) -> Channel | None:
        """A copy of the channel, or None."""
        with self._lock:
            return copy.deepcopy(self.channels.get(channel_id))

    def resolve_channel(self, ref: str) -> Channel | None:
        """A channel by id, by name (``general`` or ``#general``), or a user id's DM."""
        with self._lock:
            if ref in self.channels:
                return copy.deepcopy(self.channels[ref])
            name = ref.lstrip("#")
            for channel in self.channels.values():
                if not channel.is_im and channel.name == name:
                    return copy.deepcopy(channel)
        if ref in self.users:
            return self.open_dm(ref)
        return None

    def list_channels(self) -> list[Channel]:
        """Copies of every channel and DM, in creation order."""
        with self._lock:
            return copy.deepcopy(list(self.channels.values()))

    def list_users(self) -> list[User]:
        """Copies of every member, the bot included."""
        with self._lock:
            return copy.deepcopy(list(self.users.values()))

    def channel_type(self, channel_id: str) -> str:
        """``channel``, ``group`` or ``im``, as events name it."""
        with self._lock:
            channel = self.channels[channel_id]
            return "im" if channel.is_im else "group" if channel.is_private else "channel"

    # -- files ----------------------------------------------------------------------------

    def create_file(self, name: str, *, user: str, length: int | None = None,
                    alt_txt: str | None = None, content: bytes | None = None,
                    mimetype: str | None = None, title: str = "") -> File:
        """Register a file; with ``content`` it is complete at once (a user's upload)."""
        with self._mutate() as changes:
            file = File(id=self.new_id("F"), name=name, user=user, title=title or name,
                        mimetype=mimetype or guess_mimetype(name), size=length or 0,
                        alt_txt=alt_txt, upload_id=secrets.token_urlsafe(12))
            if content is not None:
                file.content, file.size, file.complete = content, len(content), True
            self.files[file.id] = file
            changes.append(("file", {"id": file.id}))
            return copy.deepcopy(file)

    def write_upload(self, upload_id: str, data: bytes) -> File:
        """Step 2 of files upload v2: the bytes for the file issued ``upload_id``."""
        with self._mutate():
            for file in self.files.values():
                if file.upload_id == upload_id and not file.complete:
                    file.content, file.size = data, len(data)
                    return copy.deepcopy(file)
        raise WorkspaceError("file_not_found")

    def complete_file(self, file_id: str, *, title: str | None = None) -> File:
        """Step 3 of files upload v2: the file becomes visible (``file_not_found`` before 2)."""
        with self._mutate() as changes:
            file = self.files.get(file_id)
            if file is None or file.content is None:
                raise WorkspaceError("file_not_found")
            file.complete, file.upload_id = True, None
            if title:
                file.title = title
            changes.append(("file", {"id": file.id}))
            return copy.deepcopy(file)

    def get_file(self, file_id: str) -> File | None:
        """A copy of a completed file, or None."""
        with self._lock:
            file = self.files.get(file_id)
            return copy.deepcopy(file) if file is not None and file.complete else None

    # -- response URLs --------------------------------------------------------------------

    def new_response_url(self, *, channel: str, user: str, message_ts: str | None = None,
                         ephemeral: bool = False) -> str:
        """Issue a ``response_url``; returns its absolute URL on the local server."""
        with self._mutate():
            record = ResponseUrl(id=secrets.token_urlsafe(16), channel=channel, user=user,
                                 message_ts=message_ts, ephemeral=ephemeral)
            self.response_urls[record.id] = record
            return f"{self.base_url}/response/{record.id}"

    def use_response_url(self, url_id: str, *, max_uses: int = 5,
                         max_age: float = 1800.0) -> ResponseUrl:
        """Count one use of a response URL; Slack allows 5 uses within 30 minutes."""
        with self._mutate():
            record = self.response_urls.get(url_id)
            if record is None or time.time() - record.created > max_age:
                raise WorkspaceError("expired_url")
            if record.uses >= max_uses:
                raise WorkspaceError("used_url")
            record.uses += 1
            return copy.deepcopy(record)

    def set_response_original(self, url: str, ts: str) -> None:
        """Make the ephemeral ``ts`` what ``delete_original``/``replace_original`` through the
        response URL ``url`` act on: a slash command's acknowledgement, as in Slack."""
        with self._mutate():
            record = self.response_urls.get(url.rstrip("/").rpartition("/")[2])
            if record is not None and record.message_ts is None:
                record.message_ts, record.ephemeral = ts, True

    # -- logs -----------------------------------------------------------------------------

    def record_call(self, call: ApiCall) -> None:
        """Append to the log of requests the server received."""
        with self._mutate() as changes:
            self.api_calls.append(call)
            changes.append(("api_call", {"method": call.method, "status": call.status}))

    def calls(self, method: str | None = None, *, ok: bool | None = None) -> list[ApiCall]:
        """Received requests, oldest first, optionally of one method and outcome."""
        with self._lock:
            return [copy.deepcopy(c) for c in self.api_calls
                    if (method is None or c.method == method) and (ok is None or c.ok == ok)]

    def record_delivery(self, record: DeliveryRecord) -> None:
        """Append to the log of what was sent to the app."""
        with self._mutate() as changes:
            self.delivery_log.append(record)
            changes.append(("delivery", {"kind": record.kind, "status": record.status}))

    def deliveries(self, kind: str | None = None) -> list[DeliveryRecord]:
        """What was sent to the app, oldest first, optionally of one kind."""
        with self._lock:
            return [copy.deepcopy(d) for d in self.delivery_log if kind in (None, d.kind)]

    # -- rendering ------------------------------------------------------------------------

    def message_json(self, message: Message) -> JSON:
        """A message in the Web API's shape, files included."""
        with self._lock:
            return message_to_api(message, self.team, self.base_url, self.files)

    def file_json(self, file: File) -> JSON:
        """A file in the Web API's shape, its URLs on this server."""
        with self._lock:
            return file_to_api(file, self.team, self.base_url)

    def channel_json(self, channel: Channel) -> JSON:
        """A channel in the Web API's shape."""
        return channel_to_api(channel, self.team)

    def user_json(self, user: User) -> JSON:
        """A user in the Web API's shape."""
        return user_to_api(user, self.team)

    def ephemeral_json(self, ephemeral: Ephemeral) -> JSON:
        """An ephemeral message as a dict."""
        return ephemeral_to_api(ephemeral)


__all__ = ["Workspace", "WorkspaceError"]
