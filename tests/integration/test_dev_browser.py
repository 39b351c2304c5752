"""`lmops dev` in a real browser: headless Debian Chromium driven by Playwright.

Starts `python -m lmops.dev --port 0` (the workspace, the bot and a worker on a fresh
LMOPS_HOME), then, as a person would: types `/lm classify ...` and sees the answer, drops a
CSV on the channel and sees the bot's data set report in the thread, clicks Fine-tune, and
waits for the finished result with its chart image. Saves a screenshot to the test's tmp
folder (the README's picture is made by scripts/screenshot.py).

The browser tests need Debian's chromium and the `playwright` pip package
(`scripts/install_browser.sh`); test tools can't download browsers here, so Playwright
launches /usr/bin/chromium. `lmops dev` in-process (no browser, no worker) is a fast test.
"""

from __future__ import annotations

import asyncio
import io
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage"]
POSITIVE = ["I love it", "Great product, works perfectly", "Absolutely wonderful service",
            "Best purchase this year", "Fantastic quality and fast delivery",
            "Really happy with it", "Excellent support team", "Five stars, would buy again"]
NEGATIVE = ["I hate it", "Terrible product, broke in a day", "Awful customer service",
            "Worst purchase ever", "Poor quality and slow delivery", "Really disappointed",
            "Useless support team", "One star, never again"]


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    pytest.importorskip("playwright.sync_api",
                        reason="playwright is not installed: run scripts/install_browser.sh")
    path = chromium_path()
    if path is None:
        pytest.skip("Debian's chromium is not installed: run scripts/install_browser.sh")
    return path


@pytest.fixture
def dev_url(tmp_path: Path):
    """`lmops dev` as a subprocess on a free port; yields the page's URL (with its secret)."""
    env = {**os.environ, "LMOPS_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    for key in ("LMOPS_DATABASE_URL", "LMOPS_ARTIFACTS", "SLACK_BOT_TOKEN",
                "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL", "LMOPS_DEV_TOKEN"):
        env.pop(key, None)
    log = (tmp_path / "dev.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "lmops.dev", "--port", "0"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout],  # type: ignore[union-attr]
                     daemon=True).start()
    try:
        first = lines.get(timeout=60)
    except queue.Empty:
        proc.kill()
        pytest.fail("lmops dev printed no URL within 60 s:\n" + (tmp_path / "dev.log").read_text())
    assert first.startswith("lmops dev: open http://") and "/?token=" in first, first
    yield first.removeprefix("lmops dev: open ").strip()
    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(60) == 0, (tmp_path / "dev.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


def drop_file(page, selector: str, name: str, content: str, mimetype: str = "text/csv") -> None:
    """Drag a file from outside the browser and drop it on `selector`, as a person would."""
    page.evaluate("""([selector, name, content, mimetype]) => {
        const target = document.querySelector(selector);
        const data = new DataTransfer();
        data.items.add(new File([content], name, {type: mimetype}));
        for (const type of ['dragenter', 'dragover', 'drop']) {
            target.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: data}));
        }
    }""", [selector, name, content, mimetype])


@pytest.mark.slow
def test_classify_upload_finetune_in_the_browser(chromium: str, dev_url: str, tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    rows = [f'"{t}",positive' for t in POSITIVE] + [f'"{t}",negative' for t in NEGATIVE]
    csv = "text,label\n" + "\n".join(r for pair in zip(rows[:8], rows[8:]) for r in pair) + "\n"
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(dev_url)  # sets the session cookie and drops the secret from the URL
            expect(page.locator("body[data-ready='1']")).to_have_count(1, timeout=15_000)
            assert "token" not in page.url
            expect(page.locator("#channel-title")).to_have_text("#general")

            # completion of the sub-commands
            box = page.locator("#composer textarea")
            box.fill("/lm cl")
            box.dispatch_event("input")
            expect(page.locator("#composer .completion")).to_contain_text(["/lm classify"])
            box.fill("/lm classify labels=positive,negative I love it")
            box.dispatch_event("input")
            box.press("Enter")
            main = page.locator("#messages")
            expect(main.locator(".msg.ephemeral")).to_contain_text(["Only visible to you"],
                                                                   timeout=10_000)
            answer = main.locator(".msg:not(.ephemeral)", has_text="I love it")
            expect(answer).to_contain_text("positive", timeout=120_000)

            # a CSV dropped on the channel becomes a data set; the report is in the thread
            drop_file(page, "#messages", "reviews.csv", csv)
            upload = main.locator(".msg", has=page.locator(".file-card", has_text="reviews.csv"))
            expect(upload).to_have_count(1, timeout=15_000)
            upload.locator(".replies").click(timeout=30_000)
            thread = page.locator("#thread-messages")
            report = thread.locator(".msg", has_text="Ready to use")
            expect(report).to_have_count(1, timeout=15_000)
            report.get_by_role("button", name="Fine-tune").click()

            # the job's progress and result arrive live in the thread, with the charts
            done = thread.locator(".msg", has_text="finished")
            expect(done.first).to_be_visible(timeout=200_000)
            chart = thread.locator(".file-image img").first
            expect(chart).to_be_visible(timeout=30_000)
            page.wait_for_function("(img) => img.complete && img.naturalWidth > 100",
                                   arg=chart.element_handle(), timeout=15_000)
            # for the README: the result (metrics, Promote) on top of the thread, charts below
            done.first.evaluate("node => node.scrollIntoView({block: 'start'})")
            page.mouse.move(5, 5)  # no hover toolbar in the picture
            page.wait_for_timeout(300)
            (tmp_path / "screenshot.png").write_bytes(page.screenshot())
            assert not errors, errors
        finally:
            browser.close()
    assert time.monotonic() - started < 300


PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f80f00000101000518d84e0000000049454e44ae426082")


@pytest.mark.slow
def test_page_renders_block_kit_safely_and_acts_like_slack(chromium: str):
    """The page alone, against a workspace with no app behind it (the clicks are recorded)."""
    from playwright.sync_api import expect, sync_playwright

    from lmops.dev import slash_commands
    from localslack import ADMIN_USER_ID, BOT_ID, BOT_USER_ID, GENERAL_CHANNEL_ID, LocalSlack

    with LocalSlack(deliver_to="http://127.0.0.1:9/slack/events",
                    commands=slash_commands) as slack:
        ws, general = slack.state, GENERAL_CHANNEL_ID
        chart = ws.create_file("loss.png", user=BOT_USER_ID, content=PNG_1PX)
        blocks = [
            {"type": "header", "text": {"type": "plain_text", "text": "Report :bar_chart:"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": (
                "*bold* _it_ `code` <https://example.com|safe link> <javascript:alert(1)|bad> "
                "<@U_ADMIN> &lt;img src=x onerror=window.pwned=1&gt;")},
             "fields": [{"type": "mrkdwn", "text": "*Accuracy*\n87%"},
                        {"type": "plain_text", "text": "<b>not bold</b>"}]},
            {"type": "divider"},
            {"type": "image", "slack_file": {"id": chart.id}, "alt_text": "loss curve",
             "title": {"type": "plain_text", "text": "Loss"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "model `minilm`"}]},
            {"type": "actions", "block_id": "b1", "elements": [
                {"type": "button", "action_id": "lmops_promote", "value": "m1",
                 "style": "primary", "text": {"type": "plain_text", "text": "Promote"},
                 "confirm": {"title": {"type": "plain_text", "text": "Promote m1?"},
                             "text": {"type": "plain_text", "text": "Sure?"},
                             "confirm": {"type": "plain_text", "text": "Yes"},
                             "deny": {"type": "plain_text", "text": "No"}}}]},
        ]
        report = ws.post_message(general, text="report", user=BOT_USER_ID, bot_id=BOT_ID,
                                 blocks=blocks)
        ws.post_message(general, text="<script>window.pwned=2</script>```\nx &amp; y\n```",
                        user=ADMIN_USER_ID)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True,
                                        args=CHROMIUM_FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(slack.page_url)
                expect(page.locator("body[data-ready='1']")).to_have_count(1, timeout=15_000)
                msg = page.locator(f".msg[data-ts='{report.ts}']")
                expect(msg.locator(".block-header")).to_have_text("Report 📊")
                expect(msg.locator("strong", has_text="bold")).to_have_count(1)
                expect(msg.locator("a[href='https://example.com']")).to_have_text("safe link")
                expect(msg.locator(".mention.me")).to_have_text("@you")
                expect(msg.locator(".fields")).to_contain_text("<b>not bold</b>")
                expect(msg.locator("hr.block-divider")).to_have_count(1)
                img = msg.locator(".block-image img")
                page.wait_for_function("(img) => img.complete && img.naturalWidth === 1",
                                       arg=img.element_handle(), timeout=10_000)
                expect(page.locator("pre.code-block")).to_have_text("x & y")
                assert page.locator("a[href^='javascript']").count() == 0
                assert page.locator("img[src='x'], script:not([src])").count() == 0
                assert page.evaluate("window.pwned") is None

                # a button with a confirm dialog sends block_actions only when confirmed
                msg.get_by_role("button", name="Promote").click()
                expect(page.locator("#modal-title")).to_have_text("Promote m1?")
                page.locator("#modal-confirm").click()
                ws.wait_for(lambda: ws.deliveries("block_actions"), timeout=10)
                (click,) = ws.deliveries("block_actions")
                assert click.payload["actions"][0]["value"] == "m1"
                expect(page.locator(".msg.ephemeral")).to_contain_text("dispatch_failed")

                # live: an edit, a thread reply, an ephemeral
                ws.update_message(general, report.ts, text="edited", blocks=None,
                                  editor=BOT_USER_ID)
                expect(msg).to_contain_text("edited")
                ws.post_message(general, text="a reply", user=BOT_USER_ID, bot_id=BOT_ID,
                                thread_ts=report.ts)
                msg.locator(".replies").click()
                expect(page.locator("#thread-messages")).to_contain_text("a reply")
                ws.post_ephemeral(general, ADMIN_USER_ID, text="just for you")
                expect(page.locator("#messages .msg.ephemeral", has_text="just for you")) \
                    .to_contain_text("Only visible to you")

                # completion: Tab takes the highlighted sub-command
                box = page.locator("#composer textarea")
                box.press_sequentially("/lm fi")
                expect(page.locator("#composer .completion.selected")).to_contain_text(
                    "/lm finetune DATASET")
                box.press("Tab")
                expect(box).to_have_value("/lm finetune ")
                assert not errors, errors
            finally:
                browser.close()


@pytest.mark.asyncio
async def test_dev_runs_in_process_answers_and_stops(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    """`run_dev_async` with a stop event: the URL comes first on stdout and to `ready`, the
    page's `/lm help` reaches the real bot, which answers as an admin would be answered."""
    import aiohttp

    from engine.settings import get_settings
    from lmops.dev import READY_PREFIX, run_dev_async, slash_commands

    monkeypatch.delenv("LMOPS_DEV_TOKEN", raising=False)
    settings = get_settings(lmops_home=tmp_path / "home", lmops_database_url=None,
                            slack_bot_token=None, lmops_admins="")
    stop, ready, out = asyncio.Event(), asyncio.Event(), io.StringIO()
    urls: list[str] = []
    task = asyncio.create_task(run_dev_async(settings, port=0, worker=False, stop=stop, out=out,
                                             ready=lambda url: (urls.append(url), ready.set())))
    try:
        await asyncio.wait_for(ready.wait(), 60)
        (url,) = urls
        assert out.getvalue().splitlines()[0] == READY_PREFIX + url
        base, _, token = url.partition("?token=")
        assert len(token) >= 32  # the page's secret, new for the run
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(base_url=base, cookie_jar=jar) as session:
            async with session.get("/") as page:
                assert page.status == 403  # not without the secret
            async with session.get("/", params={"token": token}) as page:
                assert page.status == 200
            async with session.get("/web/bootstrap") as resp:
                bootstrap = await resp.json()
            assert bootstrap["team"]["id"] == "local"
            (lm,) = bootstrap["commands"]  # the bot's sub-commands, passed in by lmops dev
            assert lm["command"] == "/lm" and lm["subcommands"] == slash_commands()
            async with session.post("/web/message", headers={"X-Requested-With": "t"}, json={
                    "channel": "C_GENERAL", "text": "/lm access"}) as resp:
                assert (await resp.json())["ok"]
            async with session.get("/web/history?channel=C_GENERAL") as resp:
                (answer,) = (await resp.json())["ephemerals"]
        assert "*Admins:* <@U_ADMIN>" in answer["text"]  # the local user, from LMOPS_ADMINS
        assert (tmp_path / "home" / "lmops.db").exists()
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def test_the_page_completes_the_bots_sub_commands():
    """`localslack` knows no bot; `lmops dev` hands it `bot.commands.SUBCOMMANDS`."""
    from bot.commands import SUBCOMMANDS
    from lmops.dev import slash_commands

    table = slash_commands()
    assert [c["name"] for c in table] == list(SUBCOMMANDS)
    assert {"classify", "finetune", "help"} <= {c["name"] for c in table}
    assert all(c["usage"] and c["description"] for c in table)


def test_the_worker_gets_the_data_folder_but_no_slack_tokens(tmp_path: Path):
    from engine.settings import get_settings
    from lmops.dev import dev_settings, worker_env

    settings = get_settings(lmops_home=tmp_path, lmops_admins="U1", lmops_database_url=None)
    bot = dev_settings(settings, api_url="http://127.0.0.1:1/api/", bot_token="xoxb-x",
                       signing_secret="s")
    assert bot.admins == {"U1", "U_ADMIN"} and bot.slack_api_url == "http://127.0.0.1:1/api/"
    assert bot.slack_bot_token.get_secret_value() == "xoxb-x" and bot.slack_app_token is None
    env = worker_env(bot, {"SLACK_BOT_TOKEN": "xoxb-real", "PATH": "/bin"})
    assert "SLACK_BOT_TOKEN" not in env and env["PATH"] == "/bin"
    assert env["LMOPS_HOME"] == str(tmp_path.resolve())
    assert env["LMOPS_DATABASE_URL"] == bot.database_url == settings.database_url
