"""slack_sdk's AsyncWebClient (what a Bolt AsyncApp uses) against the local server."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from localslack import ADMIN_USER_ID, GENERAL_CHANNEL_ID, LocalSlack

pytestmark = pytest.mark.asyncio


def _client(slack: LocalSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


async def test_post_update_and_history(slack: LocalSlack):
    client = _client(slack)
    posted = await client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="working…")
    await client.chat_update(channel=GENERAL_CHANNEL_ID, ts=posted["ts"], text="done",
                             blocks=[{"type": "divider"}])
    reply = await client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="detail",
                                          thread_ts=posted["ts"])
    history = await client.conversations_history(channel=GENERAL_CHANNEL_ID)
    assert [m["text"] for m in history["messages"]] == ["done"]
    assert history["messages"][0]["blocks"] == [{"type": "divider"}]
    thread = await client.conversations_replies(channel=GENERAL_CHANNEL_ID, ts=posted["ts"])
    assert [m["ts"] for m in thread["messages"]] == [posted["ts"], reply["ts"]]


async def test_errors_raise(slack: LocalSlack):
    with pytest.raises(SlackApiError) as caught:
        await AsyncWebClient(token="xoxb-nope", base_url=slack.api_url).auth_test()
    assert caught.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as caught:
        await _client(slack).conversations_info(channel="C_MISSING")
    assert caught.value.response["error"] == "channel_not_found"


async def test_rate_limited_response(slack: LocalSlack):
    slack.set_rate_limit("reactions.add", 1)
    client = _client(slack)
    ts = (await client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="x"))["ts"]
    await client.reactions_add(channel=GENERAL_CHANNEL_ID, timestamp=ts, name="one")
    with pytest.raises(SlackApiError) as caught:
        await client.reactions_add(channel=GENERAL_CHANNEL_ID, timestamp=ts, name="two")
    assert caught.value.response.status_code == 429
    assert caught.value.response["error"] == "ratelimited"
    assert "Retry-After" in caught.value.response.headers


async def test_files_upload_v2_and_download(slack: LocalSlack):
    client = _client(slack)
    resp = await client.files_upload_v2(channel=GENERAL_CHANNEL_ID, content="text,label\nhi,pos\n",
                                        filename="data.csv", title="data")
    info = (await client.files_info(file=resp["file"]["id"]))["file"]
    assert info["filetype"] == "csv" and info["mimetype"] == "text/csv" and info["size"] == 18
    async with aiohttp.ClientSession() as session:
        auth = {"Authorization": f"Bearer {slack.bot_token}"}
        async with session.get(info["url_private_download"], headers=auth) as got:
            assert got.status == 200 and await got.text() == "text,label\nhi,pos\n"
        async with session.get(info["url_private_download"]) as got:
            assert got.status == 401
    [upload] = slack.state.calls("upload")
    assert upload.params["size"] == 18


async def test_chat_stream_async(slack: LocalSlack):
    client = _client(slack)
    parent = slack.state.post_message(GENERAL_CHANNEL_ID, text="q", user=ADMIN_USER_ID)
    stream = await client.chat_stream(channel=GENERAL_CHANNEL_ID, thread_ts=parent.ts,
                                      recipient_team_id=slack.state.team.id,
                                      recipient_user_id=ADMIN_USER_ID, buffer_size=4)
    await stream.append(markdown_text="strea")
    await stream.append(markdown_text="med")
    await stream.stop()
    assert slack.state.get_message(GENERAL_CHANNEL_ID, stream.ts).text == "streamed"


async def test_workspace_waits_and_notifies(slack: LocalSlack):
    seen: list[str] = []
    unsubscribe = slack.state.subscribe(lambda kind, data: seen.append(kind))

    async def later() -> None:
        await asyncio.sleep(0.05)
        await _client(slack).chat_postMessage(channel=GENERAL_CHANNEL_ID, text="eventually")

    task = asyncio.create_task(later())
    found = await slack.state.async_wait_for(
        lambda: [m for m in slack.state.history(GENERAL_CHANNEL_ID) if m.text == "eventually"])
    await task
    unsubscribe()
    assert found[0].bot_id == slack.state.bot_id
    assert "message" in seen and "api_call" in seen
    with pytest.raises(TimeoutError):
        await slack.state.async_wait_for(lambda: False, timeout=0.05)
