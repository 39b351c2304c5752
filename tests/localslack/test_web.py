"""The browser page of the local workspace, without a browser: the page, its secret and its
session, the JSON endpoints, the live stream, and that what the page does reaches the app as
Slack would send it (slash commands, messages, ``file_share`` uploads, clicks, reactions)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from localslack import (
    ADMIN_USER_ID,
    BOT_ID,
    BOT_USER_ID,
    GENERAL_CHANNEL_ID,
    LocalSlack,
)
from localslack.web import COOKIE, CSRF_HEADER
from localslack.web_actions import safe_filename, to_slack_text

HEADERS = {CSRF_HEADER: "test"}
async_test = pytest.mark.asyncio
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
       b"\x00\x00\x00\x00IEND\xaeB`\x82")


def client(base_url: str) -> aiohttp.ClientSession:
    """Like a browser: keeps the cookies of 127.0.0.1 (aiohttp's default jar drops them)."""
    return aiohttp.ClientSession(base_url=base_url, cookie_jar=aiohttp.CookieJar(unsafe=True))


def open_page(session: aiohttp.ClientSession, slack: LocalSlack, **kwargs):
    """Open the page's URL with its secret (``slack.page_url``), as a person would."""
    return session.get("/", params={"token": slack.page_token}, **kwargs)


@pytest_asyncio.fixture
async def browser(slack: LocalSlack):
    """An HTTP client that opened the page, so it holds the session cookie."""
    async with client(slack.base_url) as session:
        async with open_page(session, slack) as page:
            assert page.status == 200
        yield session


async def post(session: aiohttp.ClientSession, path: str, body: dict) -> dict:
    async with session.post(path, json=body, headers=HEADERS) as resp:
        return {"status": resp.status, **(await resp.json())}


# -- the page and its session -------------------------------------------------------------


@async_test
async def test_page_static_files_and_session_cookie(slack: LocalSlack):
    async with client(slack.base_url) as session:
        async with open_page(session, slack) as page:
            html = await page.text()
            assert page.status == 200 and page.url.path == "/" and not page.url.query
            assert "text/html" in page.headers["Content-Type"]
            assert "script-src 'self'" in page.headers["Content-Security-Policy"]
            (redirect,) = page.history  # the secret once, then the session cookie
            cookie = redirect.cookies[COOKIE]
            assert cookie["httponly"] and cookie["samesite"] == "Strict"
        assert '<script src="/static/app.js"' in html and "http" not in html.split("<body>")[0]
        for name, kind in (("app.js", "javascript"), ("app.css", "text/css")):
            async with session.get(f"/static/{name}") as resp:
                assert resp.status == 200 and kind in resp.headers["Content-Type"]
        async with session.get("/static/../server.py") as resp:
            assert resp.status == 404


@async_test
async def test_endpoints_need_the_session_and_posts_the_header(slack: LocalSlack):
    async with client(slack.base_url) as session:
        async with session.get("/web/bootstrap") as resp:
            assert resp.status == 403
        async with session.get("/") as resp:
            assert resp.status == 403 and "lmops dev" in await resp.text()
        async with open_page(session, slack):
            pass
        async with session.get("/web/bootstrap") as resp:
            assert resp.status == 200
        async with session.post("/web/message", json={"channel": GENERAL_CHANNEL_ID,
                                                       "text": "hi"}) as resp:
            assert resp.status == 403  # a cross-site form can't send the header
    assert slack.state.history(GENERAL_CHANNEL_ID) == []


@async_test
async def test_other_host_names_get_no_page(slack: LocalSlack):
    evil = {"Host": "evil.example:80"}  # a DNS-rebinding page can't get the session
    async with client(slack.base_url) as session, \
            open_page(session, slack, headers=evil, allow_redirects=False) as resp:
        assert resp.status == 403 and COOKIE not in resp.cookies


@async_test
async def test_bootstrap_lists_conversations_users_and_commands(browser):
    async with browser.get("/web/bootstrap") as resp:
        data = await resp.json()
    assert data["me"] == ADMIN_USER_ID and data["bot_user_id"] == BOT_USER_ID
    ids = {c["id"] for c in data["channels"]}
    assert {GENERAL_CHANNEL_ID, "D_ADMIN"} <= ids
    assert data["users"][BOT_USER_ID]["is_bot"]
    (lm,) = data["commands"]
    assert lm["command"] == "/lm" and lm["subcommands"] == []  # none given (lmops dev gives them)


@async_test
async def test_commands_can_be_given(receiver):
    table = [{"name": "only", "usage": "only X", "description": "d"}]
    async with LocalSlack(commands=table) as other, client(other.base_url) as session:
        async with open_page(session, other):
            pass
        async with session.get("/web/bootstrap") as resp:
            assert (await resp.json())["commands"][0]["subcommands"] == table


# -- reading ------------------------------------------------------------------------------


@async_test
async def test_history_replies_and_ephemerals(slack: LocalSlack, browser):
    ws = slack.state
    root = ws.post_message(GENERAL_CHANNEL_ID, text="root", user=ADMIN_USER_ID)
    ws.post_message(GENERAL_CHANNEL_ID, text="reply", user=BOT_USER_ID, bot_id=BOT_ID,
                    thread_ts=root.ts)
    ws.post_ephemeral(GENERAL_CHANNEL_ID, ADMIN_USER_ID, text="only you")
    ws.post_ephemeral(GENERAL_CHANNEL_ID, ADMIN_USER_ID, text="in thread", thread_ts=root.ts)
    ws.post_ephemeral(GENERAL_CHANNEL_ID, BOT_USER_ID, text="not for you")
    async with browser.get(f"/web/history?channel={GENERAL_CHANNEL_ID}") as resp:
        history = await resp.json()
    assert [m["text"] for m in history["messages"]] == ["root"]
    assert history["messages"][0]["reply_count"] == 1
    assert [e["text"] for e in history["ephemerals"]] == ["only you"]
    async with browser.get(f"/web/replies?channel={GENERAL_CHANNEL_ID}&ts={root.ts}") as resp:
        thread = await resp.json()
    assert [m["text"] for m in thread["messages"]] == ["root", "reply"]
    assert [e["text"] for e in thread["ephemerals"]] == ["in thread"]
    async with browser.get("/web/history?channel=C_NOPE") as resp:
        assert resp.status == 404


@async_test
async def test_a_reloaded_page_shows_no_earlier_ephemerals(slack: LocalSlack, browser):
    """Slack's client drops ephemeral messages when it is reloaded: with the ``since`` that
    ``/web/bootstrap`` gave the page, history and replies leave out those shown before."""
    ws = slack.state
    root = ws.post_message(GENERAL_CHANNEL_ID, text="root", user=ADMIN_USER_ID)
    ws.post_ephemeral(GENERAL_CHANNEL_ID, ADMIN_USER_ID, text="before")
    ws.post_ephemeral(GENERAL_CHANNEL_ID, ADMIN_USER_ID, text="before, in thread",
                      thread_ts=root.ts)
    async with browser.get("/web/bootstrap") as resp:
        since = (await resp.json())["since"]
    ws.post_ephemeral(GENERAL_CHANNEL_ID, ADMIN_USER_ID, text="after")
    ws.post_ephemeral(GENERAL_CHANNEL_ID, ADMIN_USER_ID, text="after, in thread",
                      thread_ts=root.ts)

    async def shown(path: str) -> list[str]:
        async with browser.get(path) as resp:
            return [e["text"] for e in (await resp.json())["ephemerals"]]

    history = f"/web/history?channel={GENERAL_CHANNEL_ID}"
    replies = f"/web/replies?channel={GENERAL_CHANNEL_ID}&ts={root.ts}"
    assert await shown(f"{history}&since={since}") == ["after"]
    assert await shown(f"{replies}&since={since}") == ["after, in thread"]
    assert await shown(history) == ["before", "after"]  # the Web API's view: all live ones
    assert await shown(f"{history}&since=junk") == ["before", "after"]
    async with browser.get("/web/bootstrap") as resp:  # a reload
        since = (await resp.json())["since"]
    assert await shown(f"{history}&since={since}") == []


@async_test
async def test_files_reach_the_browser_with_the_session_not_the_token(slack: LocalSlack,
                                                                      browser):
    ws = slack.state
    image = ws.create_file("loss.png", user=BOT_USER_ID, content=PNG)
    page = ws.create_file("evil.html", user=ADMIN_USER_ID, content=b"<script>alert(1)</script>")
    ws.post_message(GENERAL_CHANNEL_ID, user=BOT_USER_ID, bot_id=BOT_ID, subtype="file_share",
                    files=[image.id, page.id])
    async with browser.get(f"/web/history?channel={GENERAL_CHANNEL_ID}") as resp:
        (message,) = (await resp.json())["messages"]
    urls = [f["web_url"] for f in message["files"]]
    assert urls == [f"/web/files/{image.id}/loss.png", f"/web/files/{page.id}/evil.html"]
    async with browser.get(urls[0]) as resp:
        assert resp.status == 200 and resp.content_type == "image/png"
        assert await resp.read() == PNG
    async with browser.get(urls[1]) as resp:  # never rendered as a page of this origin
        assert resp.content_type == "application/octet-stream"
        assert resp.headers["Content-Disposition"].startswith("attachment")
        assert "sandbox" in resp.headers["Content-Security-Policy"]
    async with browser.get(f"/web/files/{image.id}/other.png") as resp:
        assert resp.status == 404
    async with client(slack.base_url) as stranger, stranger.get(urls[0]) as resp:
        assert resp.status == 403


# -- acting: what the app receives --------------------------------------------------------


@async_test
async def test_slash_command_is_delivered_and_its_reply_shown(slack: LocalSlack,
                                                              receiver, browser):
    receiver.reply = lambda got: web.json_response({"text": "Classifying…"})
    result = await post(browser, "/web/message", {
        "channel": GENERAL_CHANNEL_ID, "text": "/lm classify labels=a,b I <3 it & @lmops"})
    assert result["ok"]
    (got,) = receiver.received
    assert got.valid
    form = got.form
    assert form["command"] == "/lm" and form["user_id"] == ADMIN_USER_ID
    assert form["text"] == f"classify labels=a,b I &lt;3 it &amp; <@{BOT_USER_ID}>"
    assert form["response_url"].startswith(slack.base_url) and form["trigger_id"]
    (shown,) = slack.state.ephemerals_for(ADMIN_USER_ID, GENERAL_CHANNEL_ID)
    assert shown.text == "Classifying…"
    assert slack.state.history(GENERAL_CHANNEL_ID) == []  # commands are not messages


@async_test
async def test_unknown_command_and_unreachable_app(slack: LocalSlack, browser):
    result = await post(browser, "/web/message", {"channel": GENERAL_CHANNEL_ID,
                                                  "text": "/nope x"})
    assert result["error"] == "invalid_command" and "/nope is not a valid command" in \
        result["message"]
    result = await post(browser, "/web/message", {"channel": GENERAL_CHANNEL_ID,
                                                  "text": "/lm help"})
    assert result == {"ok": False, "error": "dispatch_failed", "status": 0}  # as Slack says


@async_test
async def test_message_with_a_mention_is_a_message_and_an_app_mention(slack: LocalSlack,
                                                                      receiver,
                                                                      browser):
    result = await post(browser, "/web/message", {"channel": GENERAL_CHANNEL_ID,
                                                  "text": "hey @lmops, <b>hi</b>"})
    assert result["ok"]
    events = [r.json()["event"] for r in receiver.received]
    assert [e["type"] for e in events] == ["message", "app_mention"]
    assert events[0]["text"] == f"hey <@{BOT_USER_ID}>, &lt;b&gt;hi&lt;/b&gt;"
    assert all(r.valid for r in receiver.received)


@async_test
async def test_upload_arrives_as_file_share(slack: LocalSlack, receiver, browser):
    form = aiohttp.FormData()
    form.add_field("channel", GENERAL_CHANNEL_ID)
    form.add_field("file", b"text,label\nI love it,positive\n", filename="../../data set.csv",
                   content_type="text/csv")
    async with browser.post("/web/upload", data=form, headers=HEADERS) as resp:
        assert (await resp.json())["ok"]
    share, shared = [r.json()["event"] for r in receiver.received]
    assert share["type"] == "message" and share["subtype"] == "file_share"
    assert share["user"] == ADMIN_USER_ID and share["channel"] == GENERAL_CHANNEL_ID
    (file,) = share["files"]
    assert file["name"] == "data set.csv" and file["filetype"] == "csv"
    assert file["url_private_download"].startswith(slack.base_url + "/files-pri/")
    assert shared["type"] == "file_shared" and shared["file_id"] == file["id"]
    token = {"Authorization": f"Bearer {slack.bot_token}"}  # the app downloads it so
    async with aiohttp.ClientSession() as bot, bot.get(file["url_private_download"],
                                                       headers=token) as resp:
        assert await resp.read() == b"text,label\nI love it,positive\n"


@async_test
async def test_upload_into_a_thread(slack: LocalSlack, receiver, browser):
    root = slack.state.post_message(GENERAL_CHANNEL_ID, text="root", user=ADMIN_USER_ID)
    form = aiohttp.FormData()
    form.add_field("channel", GENERAL_CHANNEL_ID)
    form.add_field("thread_ts", root.ts)
    form.add_field("file", b"a,b\n", filename="x.csv")
    async with browser.post("/web/upload", data=form, headers=HEADERS) as resp:
        assert (await resp.json())["ok"]
    assert receiver.received[0].json()["event"]["thread_ts"] == root.ts
    form = aiohttp.FormData({"channel": GENERAL_CHANNEL_ID})
    async with browser.post("/web/upload", data=form, headers=HEADERS) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "no_file"


@async_test
async def test_button_click_is_block_actions(slack: LocalSlack, receiver, browser):
    blocks = [{"type": "actions", "block_id": "b1", "elements": [
        {"type": "button", "action_id": "lmops_finetune", "value": "3",
         "text": {"type": "plain_text", "text": "Fine-tune"}}]}]
    message = slack.state.post_message(GENERAL_CHANNEL_ID, text="report", user=BOT_USER_ID,
                                       bot_id=BOT_ID, blocks=blocks)
    result = await post(browser, "/web/action", {
        "channel": GENERAL_CHANNEL_ID, "message_ts": message.ts,
        "action_id": "lmops_finetune", "value": "3", "block_id": "b1"})
    assert result["ok"]
    payload = receiver.received[0].json()
    assert payload["type"] == "block_actions" and payload["user"]["id"] == ADMIN_USER_ID
    assert payload["actions"][0]["action_id"] == "lmops_finetune"
    assert payload["actions"][0]["value"] == "3" and payload["actions"][0]["block_id"] == "b1"
    assert payload["message"]["ts"] == message.ts and payload["response_url"]
    result = await post(browser, "/web/action", {"channel": GENERAL_CHANNEL_ID,
                                                 "message_ts": "1.000001", "action_id": "x"})
    assert result["status"] == 404


@async_test
async def test_reaction_toggles_and_is_delivered(slack: LocalSlack, receiver,
                                                 browser):
    message = slack.state.post_message(GENERAL_CHANNEL_ID, text="hi", user=BOT_USER_ID,
                                       bot_id=BOT_ID)
    body = {"channel": GENERAL_CHANNEL_ID, "ts": message.ts, "name": "tada"}
    assert (await post(browser, "/web/reaction", body))["ok"]
    assert (await post(browser, "/web/reaction", body))["ok"]
    kinds = [r.json()["event"]["type"] for r in receiver.received]
    assert kinds == ["reaction_added", "reaction_removed"]
    assert slack.state.get_message(GENERAL_CHANNEL_ID, message.ts).reactions == []
    bad = await post(browser, "/web/reaction", {**body, "name": "<script>"})
    assert bad["status"] == 400


# -- live updates -------------------------------------------------------------------------


async def read_events(resp: aiohttp.ClientResponse, count: int) -> list[dict]:
    events: list[dict] = []
    async with asyncio.timeout(5):
        while len(events) < count:
            line = (await resp.content.readline()).decode().strip()
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


@async_test
async def test_stream_sends_posts_edits_replies_and_own_ephemerals(slack: LocalSlack, browser):
    ws = slack.state
    async with browser.get("/web/stream") as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert (await read_events(resp, 1)) == [{"type": "hello"}]
        posted = ws.post_message(GENERAL_CHANNEL_ID, text="v1", user=BOT_USER_ID, bot_id=BOT_ID)
        (event,) = await read_events(resp, 1)
        assert event["message"]["text"] == "v1" and event["message"]["channel"] == \
            GENERAL_CHANNEL_ID
        ws.update_message(GENERAL_CHANNEL_ID, posted.ts, text="v2", editor=BOT_USER_ID)
        (event,) = await read_events(resp, 1)
        assert event["message"]["text"] == "v2" and event["message"]["edited"]
        ws.post_ephemeral(GENERAL_CHANNEL_ID, BOT_USER_ID, text="someone else's")
        ws.post_ephemeral(GENERAL_CHANNEL_ID, ADMIN_USER_ID, text="mine")
        (event,) = await read_events(resp, 1)
        assert event["message"]["text"] == "mine" and event["message"]["is_ephemeral"]
        ws.post_message(GENERAL_CHANNEL_ID, text="reply", user=BOT_USER_ID, bot_id=BOT_ID,
                        thread_ts=posted.ts)
        reply, parent = await read_events(resp, 2)
        assert reply["message"]["thread_ts"] == posted.ts
        assert parent["message"]["ts"] == posted.ts and parent["message"]["reply_count"] == 1
        ws.delete_message(GENERAL_CHANNEL_ID, posted.ts)
        (event,) = await read_events(resp, 1)
        assert event == {"type": "deleted", "channel": GENERAL_CHANNEL_ID, "ts": posted.ts}


@async_test
async def test_stream_ends_when_the_server_stops(receiver):
    server = LocalSlack()
    await server.start_async()
    async with client(server.base_url) as session:
        async with open_page(session, server):
            pass
        async with session.get("/web/stream") as resp:
            assert (await read_events(resp, 1)) == [{"type": "hello"}]
            async with asyncio.timeout(5):
                await server.stop_async()
                assert (await resp.content.read()).strip() == b""


# -- helpers ------------------------------------------------------------------------------


def test_typed_text_is_escaped_like_slack_and_mentions_resolved():
    users = {"lmops": BOT_USER_ID, "you": ADMIN_USER_ID}
    assert to_slack_text("a < b && c > d", users) == "a &lt; b &amp;&amp; c &gt; d"
    assert to_slack_text("@lmops hi @nobody (@you)", users) == \
        f"<@{BOT_USER_ID}> hi @nobody (<@{ADMIN_USER_ID}>)"
    assert to_slack_text("mail me@lmops.dev", users) == "mail me@lmops.dev"


@pytest.mark.parametrize(("name", "safe"), [
    ("data.csv", "data.csv"), ("../../etc/passwd", "passwd"), ("C:\\x\\y.tsv", "y.tsv"),
    ("a/b<script>.csv", "b_script_.csv"), ("", "upload"), ("..", "upload")])
def test_upload_names_are_made_safe(name: str, safe: str):
    assert safe_filename(name) == safe
