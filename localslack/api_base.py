"""The frame of the Web API stand-in: `ApiError`, a method's `Params`, the `METHODS` table
that `method(name)` registers into, and the checks several methods share. The methods
themselves are in `localslack.api` (chat, files) and `localslack.api_conversations`."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any

from .messages import WorkspaceError
from .models import JSON
from .state import Workspace


class ApiError(WorkspaceError):
    """A Web API error: ``error`` is Slack's code, ``extra`` goes into the response body."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.extra = extra


class Params:
    """A method's arguments, from a query string, a form or a JSON body."""

    def __init__(self, values: JSON) -> None:
        self.values = values

    def str(self, name: str, *, required: bool = False, error: str = "invalid_arguments") -> Any:
        value = self.values.get(name)
        if value in (None, "") and required:
            if error == "invalid_arguments":
                raise ApiError(error, response_metadata={
                    "messages": [f"[ERROR] missing required field: {name}"]})
            raise ApiError(error)
        return None if value is None else str(value)

    def json(self, name: str, *, error: str = "invalid_arguments") -> Any:
        value = self.values.get(name)
        if isinstance(value, str):
            if not value.strip():
                return None
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ApiError(error) from None
        return value

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("1", "true", "yes")

    def int(self, name: str, default: int) -> int:
        value = self.values.get(name)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ApiError("invalid_arguments") from None


Method = Callable[[Workspace, Params], JSON]
METHODS: dict[str, Method] = {}


def method(name: str) -> Callable[[Method], Method]:
    """Register a Web API method under its Slack name."""
    def register(fn: Method) -> Method:
        METHODS[name] = fn
        return fn
    return register


def _channel(ws: Workspace, p: Params, name: str = "channel") -> str:
    ref = p.str(name, required=True, error="channel_not_found")
    channel = ws.resolve_channel(ref)
    if channel is None:
        raise ApiError("channel_not_found")
    if ws.bot_user_id not in channel.members:
        raise ApiError("channel_not_found" if channel.is_private or channel.is_im
                       else "not_in_channel")
    return channel.id


def _page(items: Sequence[Any], p: Params, *, default: int = 100) -> tuple[list[Any], str]:
    limit = max(1, min(p.int("limit", default), 999))
    cursor = p.str("cursor") or ""
    try:
        start = int(base64.b64decode(cursor).decode().removeprefix("offset:")) if cursor else 0
    except ValueError:
        raise ApiError("invalid_cursor") from None
    end = start + limit
    following = base64.b64encode(f"offset:{end}".encode()).decode() if end < len(items) else ""
    return list(items[start:end]), following
