"""Deliver to the app what Slack would: slash commands, events and clicks, signed with the
signing secret, over HTTP (to ``deliver_to``) or over Socket Mode when the app is connected.

Every delivery also changes the workspace the way the user's action does in Slack (a posted
message, an uploaded file, a reaction) and is recorded in ``Workspace.deliveries()``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp

from . import payloads
from .messages import WorkspaceError
from .models import ADMIN_USER_ID, GENERAL_CHANNEL_ID, JSON, DeliveryRecord
from .responses import apply_response
from .socket_mode import SocketHub
from .state import Workspace

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"


def sign(signing_secret: str, body: bytes | str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request signature headers: ``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(signing_secret.encode(), f"v0:{ts}:".encode() + raw,
                      hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Delivery:
    """One delivery and the app's answer.

    ``status`` is the HTTP status (200 for a Socket Mode ack, 504 when no ack came in time,
    0 when the app could not be reached); ``body`` the response body or the ack's payload.
    """

    kind: str
    via: str
    status: int
    body: str
    payload: JSON
    elapsed: float
    headers: dict[str, str] = field(default_factory=dict)
    request_body: bytes = b""
    content_type: str = JSON_TYPE
    retry_num: int = 0

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The answer's body parsed as JSON (None when it is empty)."""
        return json.loads(self.body) if self.body.strip() else None


_ENVELOPES = {"slash_command": ("slash_commands", True), "block_actions": ("interactive", False),
              "event_callback": ("events_api", False), "url_verification": ("events_api", False)}


class Deliverer:
    """Sends signed requests to the app at ``deliver_to`` (or over ``hub``'s Socket Mode)."""

    def __init__(self, workspace: Workspace, *, signing_secret: str,
                 deliver_to: str | None = None, hub: SocketHub | None = None,
                 timeout: float = 10.0) -> None:
        self.workspace = workspace
        self.signing_secret = signing_secret
        self.deliver_to = deliver_to
        self.hub = hub
        self.timeout = timeout

    async def slash_command(self, text: str, *, user: str = ADMIN_USER_ID,
                            channel: str = GENERAL_CHANNEL_ID, command: str = "/lm") -> Delivery:
        """Type ``{command} {text}``; a reply in the acknowledgement is shown as Slack shows it."""
        ws = self.workspace
        url = ws.new_response_url(channel=channel, user=user)
        form = payloads.slash_command_form(
            ws, text=text, user=user, channel=channel, command=command, response_url=url,
            trigger_id=payloads.new_trigger_id())
        delivery = await self._send("slash_command", form, urlencode(form).encode(), FORM)
        reply: Any = None
        if delivery.ok and delivery.body.strip():
            try:
                reply = json.loads(delivery.body)
            except json.JSONDecodeError:
                reply = {"text": delivery.body}
        if isinstance(reply, dict) and (reply.get("text") or reply.get("blocks")):
            try:
                shown = apply_response(ws, reply, channel=channel, user=user)
                if shown["kind"] == "ephemeral":  # what the response URL's *_original acts on
                    ws.set_response_original(url, shown["ts"])
            except WorkspaceError as exc:
                log.warning("slash command ack not shown: %s", exc.error)
        return delivery

    async def event_callback(self, event: JSON, *, event_id: str | None = None) -> Delivery:
        """Deliver any event, wrapped in an ``event_callback`` with a fresh ``event_id``."""
        body = payloads.event_callback(self.workspace, event, event_id=event_id)
        return await self._send("event_callback", body, json.dumps(body).encode(), JSON_TYPE)

    async def url_verification(self, challenge: str = "localslack-challenge") -> Delivery:
        """Slack's handshake when a request URL is saved; the app must echo ``challenge``."""
        body = {"token": payloads.VERIFICATION_TOKEN, "challenge": challenge,
                "type": "url_verification"}
        return await self._send("url_verification", body, json.dumps(body).encode(), JSON_TYPE)

    async def message(self, text: str, *, user: str = ADMIN_USER_ID,
                      channel: str = GENERAL_CHANNEL_ID,
                      thread_ts: str | None = None) -> list[Delivery]:
        """``user`` posts ``text``: a ``message`` event, plus ``app_mention`` when the text
        mentions the bot outside a DM (Slack sends both)."""
        ws = self.workspace
        posted = ws.post_message(channel, text=text, user=user, thread_ts=thread_ts)
        sent = [await self.event_callback(payloads.message_event(ws, posted))]
        if f"<@{ws.bot_user_id}>" in text and ws.channel_type(channel) != "im":
            sent.append(await self.event_callback(payloads.app_mention_event(ws, posted)))
        return sent

    async def file_share(self, name: str, content: bytes | str, *, user: str = ADMIN_USER_ID,
                         channel: str = GENERAL_CHANNEL_ID, mimetype: str | None = None,
                         title: str = "", initial_comment: str = "",
                         thread_ts: str | None = None,
                         file_shared_event: bool = True) -> list[Delivery]:
        """``user`` uploads a file into ``channel``: a ``message`` event with subtype
        ``file_share`` (its ``url_private_download`` on this server), then ``file_shared``."""
        ws = self.workspace
        data = content.encode() if isinstance(content, str) else content
        file = ws.create_file(name, user=user, content=data, mimetype=mimetype, title=title)
        posted = ws.post_message(channel, text=initial_comment, user=user, subtype="file_share",
                                 thread_ts=thread_ts, files=[file.id])
        sent = [await self.event_callback(payloads.message_event(ws, posted))]
        if file_shared_event:
            event = payloads.file_shared_event(ws, file, channel=channel, user=user,
                                               event_ts=posted.ts)
            sent.append(await self.event_callback(event))
        return sent

    async def reaction_added(self, name: str, *, ts: str, user: str = ADMIN_USER_ID,
                             channel: str = GENERAL_CHANNEL_ID) -> Delivery:
        """``user`` adds ``:name:`` to the message ``ts``."""
        ws = self.workspace
        message = ws.add_reaction(channel, ts, name.strip(":"), user=user)
        event = payloads.reaction_added_event(ws, reaction=name.strip(":"), user=user,
                                              message=message)
        return await self.event_callback(event)

    async def block_actions(self, action_id: str, *, message_ts: str,
                            user: str = ADMIN_USER_ID, channel: str = GENERAL_CHANNEL_ID,
                            value: str | None = None, block_id: str | None = None) -> Delivery:
        """``user`` clicks the button ``action_id`` on the message (or ephemeral) ``message_ts``.

        The button is looked up in the message's blocks; ``value`` overrides its value.
        Raises ``LookupError`` when there is no such message.
        """
        ws = self.workspace
        message = ws.get_message(channel, message_ts)
        ephemeral = None if message is not None else ws.find_ephemeral(message_ts)
        if message is None and ephemeral is None:
            raise LookupError(f"no message {message_ts} in {channel}")
        blocks = message.blocks if message is not None else ephemeral.blocks  # type: ignore[union-attr]
        found = payloads.find_action(blocks, action_id)
        element: JSON = dict(found[1]) if found else {
            "type": "button", "action_id": action_id,
            "text": {"type": "plain_text", "text": action_id}}
        action = {**element, "block_id": block_id or (found[0] if found else "localslack"),
                  "action_ts": str(time.time())}
        action.setdefault("type", "button")
        if value is not None:
            action["value"] = value
        response_url = ws.new_response_url(channel=channel, user=user, message_ts=message_ts,
                                           ephemeral=message is None)
        payload = payloads.block_actions_payload(
            ws, user=user, channel=channel, message_ts=message_ts, action=action,
            response_url=response_url, trigger_id=payloads.new_trigger_id(),
            message=ws.message_json(message) if message is not None else None)
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self._send("block_actions", payload, body, FORM)

    async def retry(self, delivery: Delivery, *, num: int = 1,
                    reason: str = "http_timeout") -> Delivery:
        """Send ``delivery`` again as Slack's retry ``num`` (``X-Slack-Retry-Num``)."""
        return await self._send(delivery.kind, delivery.payload, delivery.request_body,
                                delivery.content_type, retry_num=num, retry_reason=reason)

    async def _send(self, kind: str, payload: JSON, body: bytes, content_type: str, *,
                    retry_num: int = 0, retry_reason: str = "") -> Delivery:
        started = time.monotonic()
        if self.hub is not None and self.hub.connected:
            envelope_type, accepts = _ENVELOPES[kind]
            _, ack = await self.hub.request(
                envelope_type, payload, accepts_response_payload=accepts,
                timeout=self.timeout, retry_attempt=retry_num, retry_reason=retry_reason)
            reply = (ack or {}).get("payload")
            delivery = Delivery(kind, "socket", 200 if ack is not None else 504,
                                json.dumps(reply) if reply else "", payload,
                                time.monotonic() - started, request_body=body,
                                content_type=content_type, retry_num=retry_num)
        else:
            delivery = await self._post(kind, payload, body, content_type, retry_num,
                                        retry_reason, started)
        self.workspace.record_delivery(DeliveryRecord(
            kind=kind, payload=payload, via=delivery.via, status=delivery.status,
            body=delivery.body, retry_num=retry_num))
        return delivery

    async def _post(self, kind: str, payload: JSON, body: bytes, content_type: str,
                    retry_num: int, retry_reason: str, started: float) -> Delivery:
        if not self.deliver_to:
            raise RuntimeError("nowhere to deliver: set deliver_to or connect a Socket Mode app")
        headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+localslack)",
                   **sign(self.signing_secret, body)}
        if retry_num:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
                    self.deliver_to, data=body, headers=headers) as resp:
                text = await resp.text()
                status, answer_headers = resp.status, dict(resp.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("delivery of %s to %s failed: %r", kind, self.deliver_to, exc)
            status, text, answer_headers = 0, repr(exc), {}
        return Delivery(kind, "http", status, text, payload, time.monotonic() - started,
                        headers=answer_headers, request_body=body, content_type=content_type,
                        retry_num=retry_num)
