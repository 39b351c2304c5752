"""slack_sdk's own blocking WebClient against the local server: every response must satisfy it."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from localslack import (
    ADMIN_USER_ID,
    BOT_ID,
    BOT_USER_ID,
    GENERAL_CHANNEL_ID,
    RANDOM_CHANNEL_ID,
    LocalSlack,
)


@pytest.fixture
def client(slack_thread: LocalSlack) -> WebClient:
    return WebClient(token=slack_thread.bot_token, base_url=slack_thread.api_url)


def _error(call) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        call()
    return caught.value


def test_auth_test_names_the_bot(client: WebClient, slack_thread: LocalSlack):
    resp = client.auth_test()
    assert resp["ok"] and resp["user_id"] == BOT_USER_ID and resp["bot_id"] == BOT_ID
    assert resp["team_id"] == slack_thread.state.team.id


def test_tokens_are_checked(slack_thread: LocalSlack):
    assert _error(WebClient(base_url=slack_thread.api_url).auth_test).response["error"] == "not_authed"
    wrong = WebClient(token="xoxb-wrong", base_url=slack_thread.api_url)
    assert _error(wrong.auth_test).response["error"] == "invalid_auth"
    app = WebClient(token=slack_thread.app_token, base_url=slack_thread.api_url)
    assert _error(app.auth_test).response["error"] == "not_allowed_token_type"
    assert [c.error for c in slack_thread.state.calls("auth.test")] == [
        "not_authed", "invalid_auth", "not_allowed_token_type"]


def test_post_update_ephemeral_delete(client: WebClient, slack_thread: LocalSlack):
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    posted = client.chat_postMessage(channel="#general", text="hi", blocks=blocks)
    assert posted["channel"] == GENERAL_CHANNEL_ID
    assert posted["message"]["bot_id"] == BOT_ID and posted["message"]["blocks"] == blocks
    updated = client.chat_update(channel=GENERAL_CHANNEL_ID, ts=posted["ts"], text="bye")
    assert updated["ts"] == posted["ts"] and updated["text"] == "bye"
    stored = slack_thread.state.get_message(GENERAL_CHANNEL_ID, posted["ts"])
    assert stored is not None and stored.text == "bye" and stored.blocks == blocks
    assert stored.edited and stored.edited["user"] == BOT_USER_ID

    eph = client.chat_postEphemeral(channel=GENERAL_CHANNEL_ID, user=ADMIN_USER_ID, text="psst")
    [seen] = slack_thread.state.ephemerals_for(ADMIN_USER_ID)
    assert seen.ts == eph["message_ts"] and seen.text == "psst"
    assert client.conversations_history(channel=GENERAL_CHANNEL_ID)["messages"][0]["text"] == "bye"

    assert client.chat_delete(channel=GENERAL_CHANNEL_ID, ts=posted["ts"])["ts"] == posted["ts"]
    assert client.conversations_history(channel=GENERAL_CHANNEL_ID)["messages"] == []
    # JSON bodies (postMessage, update) and form bodies (delete) were both understood
    assert slack_thread.state.calls("chat.delete")[0].headers["Content-Type"].startswith(
        "application/x-www-form-urlencoded")


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_errors_raise_with_slack_codes(client: WebClient, slack_thread: LocalSlack):
    assert _error(lambda: client.chat_postMessage(channel="C_NOPE", text="x")).response[
        "error"] == "channel_not_found"
    assert _error(lambda: client.chat_postMessage(channel=GENERAL_CHANNEL_ID)).response[
        "error"] == "no_text"
    assert _error(lambda: client.chat_update(channel=GENERAL_CHANNEL_ID, ts="1.000001",
                                             text="x")).response["error"] == "message_not_found"
    theirs = slack_thread.state.post_message(GENERAL_CHANNEL_ID, text="mine", user=ADMIN_USER_ID)
    assert _error(lambda: client.chat_update(channel=GENERAL_CHANNEL_ID, ts=theirs.ts,
                                             text="x")).response["error"] == "cant_update_message"
    assert _error(lambda: client.chat_delete(channel=GENERAL_CHANNEL_ID, ts=theirs.ts)).response[
        "error"] == "cant_delete_message"
    bad = _error(lambda: client.files_getUploadURLExternal(filename="a.csv", length=None))
    assert bad.response["error"] == "invalid_arguments"
    assert _error(lambda: client.api_call("nope.nothing")).response["error"] == "unknown_method"
    assert _error(lambda: client.users_info(user="U_NOBODY")).response["error"] == "user_not_found"


def test_token_in_a_form_body(slack_thread: LocalSlack):
    data = f"token={slack_thread.bot_token}&channel=C_RANDOM&text=curl".encode()
    with urllib.request.urlopen(slack_thread.api_url + "chat.postMessage", data=data) as resp:
        assert b'"ok": true' in resp.read()
    assert slack_thread.state.history(RANDOM_CHANNEL_ID)[0].text == "curl"


def test_threads_history_and_replies(client: WebClient, slack_thread: LocalSlack):
    parent = slack_thread.state.post_message(GENERAL_CHANNEL_ID, text="q", user=ADMIN_USER_ID)
    client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="a1", thread_ts=parent.ts)
    client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="a2", thread_ts=parent.ts)
    client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="top")
    history = client.conversations_history(channel=GENERAL_CHANNEL_ID)["messages"]
    assert [m["text"] for m in history] == ["top", "q"]
    assert history[1]["reply_count"] == 2 and history[1]["reply_users"] == [BOT_USER_ID]
    replies = client.conversations_replies(channel=GENERAL_CHANNEL_ID, ts=parent.ts)["messages"]
    assert [m["text"] for m in replies] == ["q", "a1", "a2"]
    assert all(m["thread_ts"] == parent.ts for m in replies)
    assert replies[1]["parent_user_id"] == ADMIN_USER_ID
    page = client.conversations_history(channel=GENERAL_CHANNEL_ID, limit=1)
    assert page["has_more"] and [m["text"] for m in page["messages"]] == ["top"]
    rest = client.conversations_history(channel=GENERAL_CHANNEL_ID, limit=1,
                                        cursor=page["response_metadata"]["next_cursor"])
    assert [m["text"] for m in rest["messages"]] == ["q"] and not rest["has_more"]
    assert _error(lambda: client.conversations_replies(channel=GENERAL_CHANNEL_ID,
                                                       ts="9.000001")).response[
        "error"] == "thread_not_found"


def test_conversations_users_and_reactions(client: WebClient, slack_thread: LocalSlack):
    info = client.conversations_info(channel=GENERAL_CHANNEL_ID)["channel"]
    assert info["name"] == "general" and info["is_member"] is True
    names = {c["name"] for c in client.conversations_list()["channels"]}
    assert {"general", "random"} <= names
    ims = client.conversations_list(types="im")["channels"]
    assert [c["user"] for c in ims] == [ADMIN_USER_ID]
    opened = client.conversations_open(users=ADMIN_USER_ID)
    assert opened["channel"]["id"] == ims[0]["id"] and opened["already_open"] is True
    newbie = slack_thread.state.add_user("newbie")
    dm = client.conversations_open(users=newbie.id, return_im=True)["channel"]
    assert dm["is_im"] and dm["user"] == newbie.id
    client.chat_postMessage(channel=newbie.id, text="hello in the DM")
    assert slack_thread.state.history(dm["id"])[0].text == "hello in the DM"
    user = client.users_info(user=ADMIN_USER_ID)["user"]
    assert user["is_admin"] and user["name"] == "you"

    ts = client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="react")["ts"]
    assert client.reactions_add(channel=GENERAL_CHANNEL_ID, timestamp=ts, name=":eyes:")["ok"]
    assert _error(lambda: client.reactions_add(channel=GENERAL_CHANNEL_ID, timestamp=ts,
                                               name="eyes")).response["error"] == "already_reacted"
    [msg] = client.conversations_history(channel=GENERAL_CHANNEL_ID)["messages"]
    assert msg["reactions"] == [{"name": "eyes", "users": [BOT_USER_ID], "count": 1}]


def _download(url: str, token: str | None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_files_upload_v2_info_and_download(client: WebClient, slack_thread: LocalSlack):
    parent = client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="results")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    resp = client.files_upload_v2(channel=GENERAL_CHANNEL_ID, thread_ts=parent["ts"],
                                  file=png, filename="loss.png", title="Loss curve",
                                  initial_comment="the loss")
    file = resp["file"]
    assert file["name"] == "loss.png" and file["title"] == "Loss curve"
    assert file["mimetype"] == "image/png" and file["size"] == len(png)
    info = client.files_info(file=file["id"])["file"]
    assert info["url_private_download"].startswith(slack_thread.base_url + "/files-pri/")
    assert GENERAL_CHANNEL_ID in info["channels"]
    [_, shared] = client.conversations_replies(channel=GENERAL_CHANNEL_ID, ts=parent["ts"])[
        "messages"]
    assert shared["text"] == "the loss" and shared["files"][0]["id"] == file["id"]

    assert _download(info["url_private_download"], slack_thread.bot_token) == (200, png)
    assert _download(info["url_private"], slack_thread.bot_token) == (200, png)
    assert _download(info["url_private_download"], None)[0] == 401
    assert _download(info["url_private_download"], "xoxb-wrong")[0] == 401
    assert [c.status for c in slack_thread.state.calls("download")] == [200, 200, 401, 401]
    assert _error(lambda: client.files_info(file="F_NOPE")).response["error"] == "file_not_found"


def test_complete_upload_before_the_bytes_fails(client: WebClient):
    issued = client.files_getUploadURLExternal(filename="x.csv", length=3)
    assert issued["upload_url"].startswith("http://127.0.0.1:")
    err = _error(lambda: client.files_completeUploadExternal(files=[{"id": issued["file_id"]}]))
    assert err.response["error"] == "file_not_found"


def test_rate_limit_raises_with_retry_after(client: WebClient, slack_thread: LocalSlack):
    ts = client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="0")["ts"]
    slack_thread.set_rate_limit("chat.update", 2)
    client.chat_update(channel=GENERAL_CHANNEL_ID, ts=ts, text="1")
    client.chat_update(channel=GENERAL_CHANNEL_ID, ts=ts, text="2")
    err = _error(lambda: client.chat_update(channel=GENERAL_CHANNEL_ID, ts=ts, text="3"))
    assert err.response.status_code == 429 and err.response["error"] == "ratelimited"
    assert 1 <= int(err.response.headers["Retry-After"]) <= 60
    assert slack_thread.state.get_message(GENERAL_CHANNEL_ID, ts).text == "2"
    client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="other methods are not limited")


def test_rate_limit_retry_handler_waits_and_succeeds(slack_thread: LocalSlack):
    client = WebClient(token=slack_thread.bot_token, base_url=slack_thread.api_url,
                       retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
    slack_thread.set_rate_limit("chat.postMessage", 1, per=1.0)
    client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="first")
    started = time.monotonic()
    assert client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="second")["ok"]
    assert time.monotonic() - started >= 0.9
    assert [c.status for c in slack_thread.state.calls("chat.postMessage")] == [200, 429, 200]


def test_chat_stream(client: WebClient, slack_thread: LocalSlack):
    parent = slack_thread.state.post_message(GENERAL_CHANNEL_ID, text="tell me", user=ADMIN_USER_ID)
    stream = client.chat_stream(channel=GENERAL_CHANNEL_ID, thread_ts=parent.ts,
                                recipient_team_id=slack_thread.state.team.id,
                                recipient_user_id=ADMIN_USER_ID, buffer_size=8)
    for word in ["Hello ", "there, ", "streaming ", "world!"]:
        stream.append(markdown_text=word)
    done = stream.stop(blocks=[{"type": "context", "elements": [
        {"type": "mrkdwn", "text": "smollm2"}]}])
    assert done["ts"] == stream.ts
    message = slack_thread.state.get_message(GENERAL_CHANNEL_ID, stream.ts)
    assert message is not None and message.thread_ts == parent.ts
    assert message.text == "Hello there, streaming world!" and not message.streaming
    assert {"chat.startStream", "chat.appendStream", "chat.stopStream"} <= {
        c.method for c in slack_thread.state.calls()}
    again = _error(lambda: client.chat_appendStream(channel=GENERAL_CHANNEL_ID, ts=stream.ts,
                                                    markdown_text="more"))
    assert again.response["error"] == "message_not_in_streaming_state"


def test_response_url_semantics(client: WebClient, slack_thread: LocalSlack):
    ws = slack_thread.state
    url = ws.new_response_url(channel=GENERAL_CHANNEL_ID, user=ADMIN_USER_ID)
    hook = WebhookClient(url)
    assert hook.send(text="only you")
    assert [e.text for e in ws.ephemerals_for(ADMIN_USER_ID)] == ["only you"]
    assert hook.send(text="everyone", response_type="in_channel").status_code == 200
    assert ws.history(GENERAL_CHANNEL_ID)[0].text == "everyone"

    ts = client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="pick")["ts"]
    clicked = WebhookClient(ws.new_response_url(channel=GENERAL_CHANNEL_ID, user=ADMIN_USER_ID,
                                                message_ts=ts))
    assert clicked.send(text="picked", replace_original=True).status_code == 200
    assert ws.get_message(GENERAL_CHANNEL_ID, ts).text == "picked"
    assert clicked.send(delete_original=True).status_code == 200
    assert ws.get_message(GENERAL_CHANNEL_ID, ts) is None

    for _ in range(3):
        hook.send(text="again")
    used = hook.send(text="sixth")
    assert used.status_code == 404 and "used_url" in used.body
    assert WebhookClient(slack_thread.base_url + "/response/nope").send(text="x").status_code == 404
