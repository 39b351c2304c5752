"""Socket Mode with slack_sdk's own aiohttp SocketModeClient, all offline."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from localslack import ADMIN_USER_ID, BOT_USER_ID, GENERAL_CHANNEL_ID, LocalSlack

pytestmark = pytest.mark.asyncio


async def _connect(slack: LocalSlack, seen: list[SocketModeRequest],
                   reply: dict | None = None) -> SocketModeClient:
    web_client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    client = SocketModeClient(app_token=slack.app_token, web_client=web_client, ping_interval=1)

    async def on_request(client: SocketModeClient, request: SocketModeRequest) -> None:
        seen.append(request)
        payload = reply if request.type == "slash_commands" else None
        await client.send_socket_mode_response(
            SocketModeResponse(envelope_id=request.envelope_id, payload=payload))

    client.socket_mode_request_listeners.append(on_request)
    await client.connect()
    await slack.state.async_wait_for(lambda: slack.hub.connected)
    return client


async def test_slash_command_over_the_socket(slack: LocalSlack):
    seen: list[SocketModeRequest] = []
    client = await _connect(slack, seen, reply={"text": "working on it"})
    try:
        delivery = await slack.deliver.slash_command("models")
        assert delivery.via == "socket" and delivery.status == 200
        [request] = seen
        assert request.type == "slash_commands" and request.accepts_response_payload
        assert request.payload["command"] == "/lm" and request.payload["text"] == "models"
        assert request.payload["response_url"].startswith(slack.base_url + "/response/")
        assert [e.text for e in slack.state.ephemerals_for(ADMIN_USER_ID)] == ["working on it"]

        events = await slack.deliver.message(f"<@{BOT_USER_ID}> hi")
        assert [d.via for d in events] == ["socket", "socket"]
        assert [r.type for r in seen[1:]] == ["events_api", "events_api"]
        assert seen[2].payload["event"]["type"] == "app_mention"
        retried = await slack.deliver.retry(events[0], num=1, reason="timeout")
        assert retried.status == 200 and seen[-1].retry_attempt == 1
        assert seen[-1].retry_reason == "timeout"

        ts = slack.state.post_message(GENERAL_CHANNEL_ID, text="x", user=BOT_USER_ID,
                                      bot_id=slack.state.bot_id,
                                      blocks=[{"type": "actions", "elements": [
                                          {"type": "button", "action_id": "go",
                                           "text": {"type": "plain_text", "text": "Go"}}]}]).ts
        await slack.deliver.block_actions("go", message_ts=ts)
        assert seen[-1].type == "interactive" and seen[-1].payload["actions"][0]["action_id"] == "go"
    finally:
        await client.close()
    await slack.state.async_wait_for(lambda: not slack.hub.connected)


async def test_missing_ack_is_reported(slack: LocalSlack):
    web_client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    client = SocketModeClient(app_token=slack.app_token, web_client=web_client)
    await client.connect()  # no listener: nothing acknowledges
    try:
        await slack.state.async_wait_for(lambda: slack.hub.connected)
        slack.deliver.timeout = 0.2
        delivery = await slack.deliver.slash_command("help")
        assert delivery.status == 504 and not delivery.ok
    finally:
        await client.close()


async def test_connections_open_needs_the_app_token(slack: LocalSlack):
    client = AsyncWebClient(base_url=slack.api_url)
    opened = await client.apps_connections_open(app_token=slack.app_token)
    assert opened["url"].startswith("ws://127.0.0.1:")
    for token, error in ((slack.bot_token, "not_allowed_token_type"),
                         ("xapp-wrong", "invalid_auth")):
        with pytest.raises(SlackApiError) as caught:
            await client.apps_connections_open(app_token=token)
        assert caught.value.response["error"] == error
