"""Issue 11, item 7: the local page (`lmops dev`) trusts only whoever has the per-run secret.

Against the public surface: a `LocalSlack` server (the page `lmops dev` serves) over HTTP, the
bot's Web API with its token, and the `lmops dev` command line in a subprocess. Without the
secret no one gets the page, its JSON, its live stream or its files; `?token=` once gives an
HttpOnly, SameSite=Strict session cookie and a redirect to the URL without the token; the bot's
API calls and deliveries work as before; `--host` off loopback needs a token chosen on purpose.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from localslack import (
    ADMIN_USER_ID,
    BOT_USER_ID,
    DEFAULT_SIGNING_SECRET,
    GENERAL_CHANNEL_ID,
    LocalSlack,
)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "a-page-secret-for-this-test-0123456789"
COOKIE = "localslack_session"
POST_HEADERS = {"X-Requested-With": "test"}  # what the page's fetch() sends
async_test = pytest.mark.asyncio


def client(**kwargs) -> aiohttp.ClientSession:
    """Like a browser: keeps cookies for 127.0.0.1 (aiohttp's default jar drops them)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), **kwargs)


@pytest_asyncio.fixture
async def slack():
    """The server started as the tests of `localslack` start it (it makes its own secret)."""
    async with LocalSlack() as server:
        yield server


def share_file(slack: LocalSlack) -> str:
    """Another user's file shared in #general; returns the page's URL of it."""
    file = slack.state.create_file("salaries.csv", user="U_OTHER",
                                   content=b"name,salary\nann,100\n")
    slack.state.post_message(GENERAL_CHANNEL_ID, user=BOT_USER_ID, subtype="file_share",
                             files=[file.id])
    return f"{slack.base_url}/web/files/{file.id}/salaries.csv"


@pytest.fixture
def shared_file(slack: LocalSlack) -> str:
    return share_file(slack)


async def refused(resp: aiohttp.ClientResponse) -> None:
    assert resp.status == 403, resp.status
    assert "lmops dev" in await resp.text()  # says which URL to open
    assert COOKIE not in resp.cookies


# -- without the secret: nothing ----------------------------------------------------------


@async_test
async def test_no_token_no_page_no_json_no_files_no_actions(slack: LocalSlack, shared_file: str):
    base = slack.base_url
    async with client() as stranger:
        for path in ("/", "/web/bootstrap", f"/web/history?channel={GENERAL_CHANNEL_ID}",
                     "/web/stream"):
            async with stranger.get(base + path) as resp:
                await refused(resp)
        async with stranger.get(shared_file) as resp:
            await refused(resp)
            assert b"salary" not in await resp.read()
        async with stranger.post(base + "/web/message", headers=POST_HEADERS, json={
                "channel": GENERAL_CHANNEL_ID, "text": "/lm access grant U_EVIL admin"}) as resp:
            await refused(resp)
        form = aiohttp.FormData({"channel": GENERAL_CHANNEL_ID})
        form.add_field("file", b"text,label\nx,y\n", filename="evil.csv")
        async with stranger.post(base + "/web/upload", data=form, headers=POST_HEADERS) as resp:
            await refused(resp)
    assert slack.state.deliveries() == [] and len(slack.state.history(GENERAL_CHANNEL_ID)) == 1


@async_test
async def test_a_wrong_token_or_a_forged_cookie_is_refused(slack: LocalSlack, shared_file: str):
    base = slack.base_url
    async with client() as stranger:
        for wrong in ("wrong", TOKEN, "x" * 43, ""):
            async with stranger.get(base + "/", params={"token": wrong},
                                    allow_redirects=False) as resp:
                await refused(resp)
        async with stranger.get(shared_file, params={"token": "wrong"}) as resp:
            await refused(resp)
    for forged in ("0" * 64, "x", ""):
        async with client(cookies={COOKIE: forged}) as forger, \
                forger.get(base + "/web/bootstrap") as resp:
            await refused(resp)
    # a session of another run (another secret) is no session here
    async with LocalSlack(page_token="another-run-secret-abcdefghijklmnop") as other:
        async with client() as session:
            async with session.get(other.page_url) as resp:
                assert resp.status == 200
            cookie = session.cookie_jar.filter_cookies(other.base_url)[COOKIE].value
        async with client(cookies={COOKIE: cookie}) as replay, \
                replay.get(base + "/web/bootstrap") as resp:
            await refused(resp)


# -- with the secret: a session cookie, then the page works -------------------------------


@async_test
async def test_the_token_gives_a_strict_httponly_cookie_and_a_clean_url():
    async with LocalSlack(page_token=TOKEN) as slack:
        await check_token_session(slack, share_file(slack))


async def check_token_session(slack: LocalSlack, shared_file: str) -> None:
    assert slack.page_url == f"{slack.base_url}/?token={TOKEN}"
    async with client(cookies={COOKIE: TOKEN}) as forger, \
            forger.get(slack.base_url + "/web/bootstrap") as resp:  # the token is no session
        await refused(resp)
    async with client() as browser:
        async with browser.get(slack.page_url, allow_redirects=False) as resp:
            assert resp.status in (302, 303)
            assert "token" not in resp.headers["Location"]
            assert urlsplit(resp.headers["Location"]).path == "/"
            cookie = resp.cookies[COOKIE]
            assert cookie["httponly"] and cookie["samesite"] == "Strict"
            assert cookie.value and TOKEN not in cookie.value
        async with browser.get(slack.base_url + "/") as page:  # the cookie alone, from now on
            assert page.status == 200 and "text/html" in page.headers["Content-Type"]
            assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        async with browser.get(slack.base_url + "/web/bootstrap") as resp:
            data = await resp.json()
            assert resp.status == 200 and data["me"] == ADMIN_USER_ID
        async with browser.get(shared_file) as resp:
            assert resp.status == 200 and await resp.read() == b"name,salary\nann,100\n"
        # the token on another page URL works as well, and is dropped from it
        async with client() as other, other.get(shared_file, params={"token": TOKEN}) as resp:
            assert resp.status == 200 and "token" not in str(resp.url)
        # the Host check still holds with a valid session (DNS rebinding)
        async with browser.get(slack.base_url + "/web/bootstrap",
                               headers={"Host": "evil.example:80"}) as resp:
            assert resp.status == 403


@async_test
async def test_a_server_makes_its_own_secret_when_given_none():
    async with LocalSlack() as one, LocalSlack() as two:
        tokens = [parse_qs(urlsplit(s.page_url).query)["token"][0] for s in (one, two)]
        assert tokens[0] != tokens[1] and min(map(len, tokens)) >= 32
        async with client() as stranger, stranger.get(one.base_url + "/") as resp:
            await refused(resp)
        async with client() as browser, browser.get(one.page_url) as resp:
            assert resp.status == 200


# -- the bot's side is untouched ----------------------------------------------------------


@async_test
async def test_the_bots_web_api_files_and_deliveries_still_work(slack: LocalSlack):
    received: list[bool] = []

    async def app(request: web.Request) -> web.Response:
        body = await request.read()
        received.append(SignatureVerifier(DEFAULT_SIGNING_SECRET).is_valid_request(
            body, dict(request.headers)))
        return web.json_response({"text": "Classifying…"})

    bot_app = web.Application()
    bot_app.router.add_post("/slack/events", app)
    runner = web.AppRunner(bot_app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    slack.deliver_to = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        api = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        assert (await api.auth_test())["user_id"] == BOT_USER_ID
        posted = await api.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="hello")
        assert posted["ok"]
        upload = await api.files_upload_v2(channel=GENERAL_CHANNEL_ID, filename="r.csv",
                                           content="a,b\n1,2\n")
        file_id = upload["file"]["id"]
        info = await api.files_info(file=file_id)
        async with aiohttp.ClientSession() as bot:  # the bot downloads with its token
            url = info["file"]["url_private_download"]
            async with bot.get(url, headers={"Authorization": f"Bearer {slack.bot_token}"}) \
                    as resp:
                assert resp.status == 200 and await resp.read() == b"a,b\n1,2\n"
            async with bot.get(url) as resp:
                assert resp.status == 401
        delivery = await slack.deliver.slash_command("help", user=ADMIN_USER_ID)
        assert delivery.ok and received == [True]
        async with client() as stranger, stranger.get(slack.base_url + "/") as resp:
            assert resp.status == 403  # while the page stays shut
    finally:
        await runner.cleanup()


# -- the command line ---------------------------------------------------------------------


def dev_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "LMOPS_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1", **extra}
    for key in ("LMOPS_DATABASE_URL", "LMOPS_ARTIFACTS", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET",
                "SLACK_APP_TOKEN", "SLACK_API_URL", "LMOPS_DEBUG"):
        env.pop(key, None)
    if "LMOPS_DEV_TOKEN" not in extra:
        env.pop("LMOPS_DEV_TOKEN", None)
    return env


def lmops() -> str:
    return str(Path(sys.executable).with_name("lmops"))


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "::"])
def test_dev_refuses_a_non_loopback_host_without_a_chosen_token(tmp_path: Path, host: str):
    try:
        done = subprocess.run([lmops(), "dev", "--host", host, "--port", "0"], cwd=tmp_path,
                              env=dev_env(tmp_path), capture_output=True, text=True, timeout=60,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"lmops dev --host {host} started instead of refusing: {exc.stdout!r}")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()  # one clear line, no traceback
    assert line.startswith("lmops dev: error:") and host in line and "LMOPS_DEV_TOKEN" in line


class Dev:
    """`python -m lmops.dev --port 0 --no-worker ...` until `stop()`; `url` is its first line."""

    def __init__(self, tmp_path: Path, *args: str, **env: str) -> None:
        self.log = (tmp_path / "dev.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lmops.dev", "--port", "0", "--no-worker", *args],
            cwd=tmp_path, env=dev_env(tmp_path, **env), stdout=subprocess.PIPE, stderr=self.log,
            text=True)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in self.proc.stdout],  # type: ignore[union-attr]
                         daemon=True).start()
        try:
            first = lines.get(timeout=60)
        except queue.Empty:
            self.stop()
            pytest.fail("lmops dev printed no URL:\n" + (tmp_path / "dev.log").read_text())
        assert first.startswith("lmops dev: open http://127.0.0.1:"), first
        self.url = first.removeprefix("lmops dev: open ").strip()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.log.close()


@async_test
async def test_dev_prints_a_token_url_and_the_page_needs_it(tmp_path: Path):
    dev = Dev(tmp_path)
    try:
        parts = urlsplit(dev.url)
        (token,) = parse_qs(parts.query)["token"]
        assert parts.path == "/" and len(token) >= 32
        base = f"{parts.scheme}://{parts.netloc}"
        async with client() as stranger, stranger.get(base + "/") as resp:
            await refused(resp)
        async with client() as browser:
            async with browser.get(dev.url) as resp:
                assert resp.status == 200 and "token" not in str(resp.url)
            async with browser.get(base + "/web/bootstrap") as resp:
                assert (await resp.json())["team"]["id"] == "local"
    finally:
        dev.stop()
    again = Dev(tmp_path)  # a new secret every run
    try:
        assert parse_qs(urlsplit(again.url).query)["token"] != [token]
    finally:
        again.stop()


@async_test
async def test_dev_on_every_interface_with_a_chosen_token(tmp_path: Path):
    dev = Dev(tmp_path, "--host", "0.0.0.0", LMOPS_DEV_TOKEN="my-own-secret-0123456789abcdef")
    try:
        assert dev.url.endswith("/?token=my-own-secret-0123456789abcdef")
        base = dev.url.split("?")[0].rstrip("/")
        async with client() as stranger, stranger.get(base + "/web/bootstrap") as resp:
            await refused(resp)
        async with client() as browser, browser.get(dev.url) as resp:
            assert resp.status == 200
    finally:
        dev.stop()
