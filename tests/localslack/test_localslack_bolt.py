"""A real Bolt AsyncApp against the local Slack, over HTTP and over Socket Mode: what the bot's
own tests rely on (signatures accepted, auth.test, say/respond/ack, uploads, downloads)."""

from __future__ import annotations

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from localslack import ADMIN_USER_ID, BOT_USER_ID, GENERAL_CHANNEL_ID, LocalSlack

pytestmark = pytest.mark.asyncio
BUTTONS = [{"type": "actions", "block_id": "job", "elements": [
    {"type": "button", "action_id": "cancel", "value": "job-1",
     "text": {"type": "plain_text", "text": "Cancel"}}]}]


def _bolt(slack: LocalSlack) -> AsyncApp:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    app = AsyncApp(client=client, signing_secret=slack.signing_secret)

    @app.command("/lm")
    async def lm(ack, respond, command, client):
        await ack(f"got `{command['text']}`")
        await respond(text="result", response_type="in_channel")
        await client.chat_postMessage(channel=command["channel_id"], text="job 1", blocks=BUTTONS)

    @app.action("cancel")
    async def cancel(ack, respond, body):
        await ack()
        await respond(text=f"cancelled {body['actions'][0]['value']}", replace_original=True)

    @app.event("app_mention")
    async def mention(event, say):
        await say(text="hello", thread_ts=event["ts"])

    @app.event("message")
    async def message(event, client, context):
        for file in event.get("files", []):
            async with aiohttp.ClientSession() as session:
                auth = {"Authorization": f"Bearer {context.bot_token}"}
                async with session.get(file["url_private_download"], headers=auth) as got:
                    data = await got.read()
            await client.files_upload_v2(channel=event["channel"], thread_ts=event["ts"],
                                         content=data.upper(), filename="echo.csv")

    return app


@pytest_asyncio.fixture
async def bolt_http(slack: LocalSlack):
    bolt = _bolt(slack)

    async def endpoint(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", endpoint)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    slack.deliver_to = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    yield bolt
    await runner.cleanup()


async def _command_round_trip(slack: LocalSlack, via: str) -> None:
    ws = slack.state
    delivery = await slack.deliver.slash_command("jobs")
    assert delivery.ok and delivery.via == via
    await ws.async_wait_for(lambda: [m for m in ws.history(GENERAL_CHANNEL_ID) if m.blocks])
    assert [e.text for e in ws.ephemerals_for(ADMIN_USER_ID)] == ["got `jobs`"]
    assert {m.text for m in ws.history(GENERAL_CHANNEL_ID)} == {"result", "job 1"}
    job = next(m for m in ws.history(GENERAL_CHANNEL_ID) if m.blocks)
    assert (await slack.deliver.block_actions("cancel", message_ts=job.ts)).ok
    await ws.async_wait_for(lambda: ws.get_message(GENERAL_CHANNEL_ID, job.ts).text != "job 1")
    assert ws.get_message(GENERAL_CHANNEL_ID, job.ts).text == "cancelled job-1"


async def test_bolt_over_http(slack: LocalSlack, bolt_http: AsyncApp):
    ws = slack.state
    await _command_round_trip(slack, "http")
    assert ws.calls("auth.test")[0].ok  # Bolt's single-workspace authorization

    sent = await slack.deliver.message(f"<@{BOT_USER_ID}> hi")
    assert all(d.status == 200 for d in sent)
    mention_ts = sent[0].payload["event"]["ts"]
    replies = await ws.async_wait_for(lambda: ws.replies(GENERAL_CHANNEL_ID, mention_ts)[1:])
    assert replies[0].text == "hello" and replies[0].user == BOT_USER_ID

    shared = await slack.deliver.file_share("d.csv", "a,b\n", file_shared_event=False)
    share_ts = shared[0].payload["event"]["ts"]
    thread = await ws.async_wait_for(lambda: ws.replies(GENERAL_CHANNEL_ID, share_ts)[1:])
    echo = ws.get_file(thread[0].files[0])
    assert echo is not None and echo.content == b"A,B\n"


async def test_bolt_rejects_a_forged_request(slack: LocalSlack, bolt_http: AsyncApp):
    slack.deliver.signing_secret = "forged"
    assert (await slack.deliver.slash_command("jobs")).status == 401
    assert slack.state.calls("chat.postMessage") == []


async def test_bolt_over_socket_mode(slack: LocalSlack):
    handler = AsyncSocketModeHandler(_bolt(slack), app_token=slack.app_token)
    await handler.connect_async()
    try:
        await slack.state.async_wait_for(lambda: slack.hub.connected)
        await _command_round_trip(slack, "socket")
    finally:
        await handler.close_async()
