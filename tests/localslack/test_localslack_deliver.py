"""What the local Slack sends to the app: signed exactly as Slack signs, in Slack's shapes."""

from __future__ import annotations

import time

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from localslack import (
    ADMIN_DM_ID,
    ADMIN_USER_ID,
    BOT_USER_ID,
    GENERAL_CHANNEL_ID,
    Deliverer,
    LocalSlack,
    sign,
)

pytestmark = pytest.mark.asyncio


async def test_slash_command_is_signed_form_with_response_url(slack: LocalSlack, receiver):
    receiver.reply = lambda got: web.json_response({"text": "on it"})
    delivery = await slack.deliver.slash_command("classify I love it")
    assert delivery.ok and delivery.via == "http" and delivery.elapsed < 3
    [got] = receiver.received
    assert got.valid and got.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = got.form
    assert form["command"] == "/lm" and form["text"] == "classify I love it"
    assert form["user_id"] == ADMIN_USER_ID and form["channel_id"] == GENERAL_CHANNEL_ID
    assert form["team_id"] == slack.state.team.id and form["trigger_id"]
    assert form["response_url"].startswith(slack.base_url + "/response/")
    # the acknowledgement's text is shown to the user only, as Slack does
    assert [e.text for e in slack.state.ephemerals_for(ADMIN_USER_ID)] == ["on it"]
    # the app answers later through the response_url
    await AsyncWebhookClient(form["response_url"]).send(text="positive (0.98)",
                                                       response_type="in_channel")
    assert slack.state.history(GENERAL_CHANNEL_ID)[0].text == "positive (0.98)"
    assert slack.state.deliveries("slash_command")[0].status == 200


async def test_wrong_secret_and_stale_timestamp_are_rejected(slack: LocalSlack, receiver):
    impostor = Deliverer(slack.state, signing_secret="not-the-secret", deliver_to=receiver.url)
    assert (await impostor.slash_command("help")).status == 401
    assert not receiver.received[-1].valid
    body = b"token=x&command=%2Flm"
    verifier = SignatureVerifier("s3cret")
    assert verifier.is_valid_request(body, sign("s3cret", body))
    assert not verifier.is_valid_request(body, sign("s3cret", body, int(time.time()) - 600))
    assert not verifier.is_valid_request(body + b"x", sign("s3cret", body))


async def test_message_and_mention_events(slack: LocalSlack, receiver):
    sent = await slack.deliver.message(f"<@{BOT_USER_ID}> hello there")
    assert [d.status for d in sent] == [200, 200]
    events = [r.json() for r in receiver.received]
    assert all(r.valid for r in receiver.received)
    assert [e["type"] for e in events] == ["event_callback", "event_callback"]
    assert [e["event"]["type"] for e in events] == ["message", "app_mention"]
    assert events[0]["event_id"] != events[1]["event_id"]
    assert isinstance(events[0]["event_time"], int)
    assert events[0]["authorizations"][0]["user_id"] == BOT_USER_ID
    message = events[0]["event"]
    assert message["channel_type"] == "channel" and message["user"] == ADMIN_USER_ID
    assert slack.state.get_message(GENERAL_CHANNEL_ID, message["ts"]).text.endswith("hello there")
    # a DM is only a message event, in a thread when asked
    thread = await slack.deliver.message("more", channel=ADMIN_DM_ID)
    reply = await slack.deliver.message("in thread", channel=ADMIN_DM_ID,
                                        thread_ts=thread[0].payload["event"]["ts"])
    assert len(thread) == 1 and thread[0].payload["event"]["channel_type"] == "im"
    assert reply[0].payload["event"]["thread_ts"] == thread[0].payload["event"]["ts"]


async def test_file_share_points_at_the_server(slack: LocalSlack, receiver):
    sent = await slack.deliver.file_share("train.csv", "text,label\ngood,pos\n",
                                          initial_comment="my data")
    share, shared = (d.payload["event"] for d in sent)
    assert share["type"] == "message" and share["subtype"] == "file_share"
    assert share["text"] == "my data"
    [file] = share["files"]
    assert file["name"] == "train.csv" and file["mimetype"] == "text/csv"
    assert file["url_private_download"].startswith(slack.base_url)
    assert shared == {"type": "file_shared", "channel_id": GENERAL_CHANNEL_ID,
                      "file_id": file["id"], "user_id": ADMIN_USER_ID,
                      "file": {"id": file["id"]}, "event_ts": share["ts"]}
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    assert (await client.files_info(file=file["id"]))["file"]["size"] == 20
    async with aiohttp.ClientSession() as session, session.get(file["url_private_download"],
                           headers={"Authorization": f"Bearer {slack.bot_token}"}) as got:
        assert await got.read() == b"text,label\ngood,pos\n"


async def test_reaction_added(slack: LocalSlack, receiver):
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    ts = (await client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="rate me"))["ts"]
    delivery = await slack.deliver.reaction_added("thumbsup", ts=ts)
    event = receiver.received[0].json()["event"]
    assert delivery.ok and event["type"] == "reaction_added" and event["reaction"] == "thumbsup"
    assert event["item"] == {"type": "message", "channel": GENERAL_CHANNEL_ID, "ts": ts}
    assert event["item_user"] == BOT_USER_ID and event["user"] == ADMIN_USER_ID


async def test_block_actions_click_and_replace(slack: LocalSlack, receiver):
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "data set ok"}},
              {"type": "actions", "block_id": "ds", "elements": [
                  {"type": "button", "action_id": "finetune", "value": "ds-7",
                   "text": {"type": "plain_text", "text": "Fine-tune"}}]}]
    ts = (await client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="ok",
                                        blocks=blocks))["ts"]
    delivery = await slack.deliver.block_actions("finetune", message_ts=ts)
    [got] = receiver.received
    assert delivery.ok and got.valid
    assert got.headers["Content-Type"] == "application/x-www-form-urlencoded"
    payload = got.json()
    assert payload["type"] == "block_actions" and payload["user"]["id"] == ADMIN_USER_ID
    [action] = payload["actions"]
    assert (action["action_id"], action["block_id"], action["value"]) == ("finetune", "ds", "ds-7")
    assert payload["container"] == {"type": "message", "message_ts": ts,
                                    "channel_id": GENERAL_CHANNEL_ID, "is_ephemeral": False}
    assert payload["message"]["blocks"] == blocks and payload["trigger_id"]
    await AsyncWebhookClient(payload["response_url"]).send(text="queued", replace_original=True)
    assert slack.state.get_message(GENERAL_CHANNEL_ID, ts).text == "queued"
    with pytest.raises(LookupError):
        await slack.deliver.block_actions("finetune", message_ts="1.000000")


async def test_retry_headers_resend_the_same_event(slack: LocalSlack, receiver):
    first = await slack.deliver.event_callback({"type": "app_home_opened", "user": ADMIN_USER_ID})
    again = await slack.deliver.retry(first, num=2, reason="http_timeout")
    one, two = receiver.received
    assert two.valid and one.body == two.body
    assert two.headers["X-Slack-Retry-Num"] == "2"
    assert two.headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert "X-Slack-Retry-Num" not in one.headers and again.retry_num == 2


async def test_url_verification_and_nowhere_to_deliver(slack: LocalSlack, receiver):
    receiver.reply = lambda got: web.json_response({"challenge": got.json()["challenge"]})
    delivery = await slack.deliver.url_verification("abc")
    assert delivery.json() == {"challenge": "abc"}
    slack.deliver_to = None
    with pytest.raises(RuntimeError, match="nowhere to deliver"):
        await slack.deliver.slash_command("help")


async def test_unreachable_app_is_status_zero(slack: LocalSlack):
    slack.deliver_to = "http://127.0.0.1:9/slack/events"
    delivery = await slack.deliver.slash_command("help")
    assert delivery.status == 0 and not delivery.ok
    assert slack.state.deliveries()[0].status == 0


async def test_a_commands_response_url_can_delete_or_replace_its_acknowledgement(
        slack: LocalSlack, receiver):
    """The ephemeral acknowledgement of a slash command is the "original" of its
    response_url: the app removes "⏳ Classifying…" once the answer is posted (issue 12)."""
    receiver.reply = lambda got: web.json_response({"text": "⏳ Classifying…"})
    await slack.deliver.slash_command("classify I love it")
    url = receiver.received[-1].form["response_url"]
    [ack] = slack.state.ephemerals_for(ADMIN_USER_ID)
    await AsyncWebhookClient(url).send(text="replaced", replace_original=True)
    assert [(e.ts, e.text) for e in slack.state.ephemerals_for(ADMIN_USER_ID)] == \
        [(ack.ts, "replaced")]
    response = await AsyncWebhookClient(url).send_dict({"delete_original": True})
    assert response.status_code == 200 and slack.state.ephemerals_for(ADMIN_USER_ID) == []
    # a command answered with nothing has no original to delete
    receiver.reply = None
    await slack.deliver.slash_command("classify again")
    url = receiver.received[-1].form["response_url"]
    response = await AsyncWebhookClient(url).send_dict({"delete_original": True})
    assert response.status_code == 400 and "message_not_found" in response.body
