"""Makes the README's picture, docs/screenshot.png, from real use of `lmops dev`.

    .venv/bin/python scripts/screenshot.py [--out docs/screenshot.png]

Starts `lmops dev` (the local workspace, the bot and an engine worker) on a fresh data folder
and drives its page in Debian's chromium with Playwright, as tests/integration/
test_dev_browser.py does (scripts/install_browser.sh installs both). As a newcomer would, you
try a zero-shot `/lm classify labels=bug,billing,praise ...`, drop examples/tickets.csv
(support tickets) on #general, press Fine-tune on the data-set card (the default options), wait
for the result card with its metrics and charts and press Promote; then a teammate, Maria,
types `/lm classify ...` and the answer, from the promoted model, is posted "asked by @maria".
The picture shows the channel and, beside it, the upload's thread with the fine-tune's result.
About two minutes on two CPU cores (the fine-tune); `--keep` leaves the data folder for a look.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage"]
FIRST = "The app crashes every time I open the settings page"
ASKED = "I was charged twice for my subscription this month, please refund one"


def drop_file(page: Any, selector: str, path: Path) -> None:
    """Drag a file from outside the browser and drop it on `selector`, as a person would."""
    page.evaluate("""([selector, name, content]) => {
        const target = document.querySelector(selector);
        const data = new DataTransfer();
        data.items.add(new File([content], name, {type: 'text/csv'}));
        for (const type of ['dragenter', 'dragover', 'drop']) {
            target.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true,
                                                      dataTransfer: data}));
        }
    }""", [selector, path.name, path.read_text(encoding="utf-8")])


class Loop:
    """An event loop in a thread, for the dev stack while Playwright's sync API drives the page."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def chromium_path() -> str:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    sys.exit("screenshot: Debian's chromium is not installed: run scripts/install_browser.sh")


def take(out: Path, home: Path, data: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from engine.settings import get_settings
    from lmops.dev import DevStack
    from localslack import GENERAL_CHANNEL_ID

    settings = get_settings(lmops_home=home, lmops_database_url=None, lmops_artifacts=None,
                            lmops_admins="", slack_bot_token=None, _env_file=None)
    loop, stack = Loop(), DevStack(settings, port=0)
    started = time.monotonic()
    try:
        url = loop.run(stack.start())
        maria = stack.slack.state.add_user("maria", real_name="Maria Lopez")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), headless=True,
                                        args=CHROMIUM_FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(url)
                expect(page.locator("body[data-ready='1']")).to_have_count(1, timeout=30_000)
                main, thread = page.locator("#messages"), page.locator("#thread-messages")

                # zero-shot first, as a newcomer tries it
                box = page.locator("#composer textarea")
                box.fill(f"/lm classify labels=bug,billing,praise {FIRST}")
                box.dispatch_event("input")
                box.press("Enter")
                first = main.locator(".msg:not(.ephemeral)", has_text=FIRST)
                expect(first).to_contain_text("bug", timeout=180_000)

                drop_file(page, "#messages", data)
                upload = main.locator(".msg", has=page.locator(".file-card", has_text=data.name))
                expect(upload).to_have_count(1, timeout=30_000)
                upload.locator(".replies").click(timeout=60_000)
                card = thread.locator(".msg", has_text="Ready to use")
                expect(card).to_have_count(1, timeout=30_000)
                card.get_by_role("button", name="Fine-tune").click()
                print("screenshot: fine-tuning (default options)…", file=sys.stderr)

                ended = thread.locator(".msg", has_text=re.compile(r"Fine-tune #\d+ (finished|failed)"))
                expect(ended.first).to_be_visible(timeout=900_000)
                if "failed" in ended.first.inner_text():
                    raise SystemExit(f"screenshot: the fine-tune failed: {ended.first.inner_text()}")
                done = thread.locator(".msg", has_text="finished")
                chart = thread.locator(".file-image img").first
                expect(chart).to_be_visible(timeout=60_000)
                page.wait_for_function("(img) => img.complete && img.naturalWidth > 100",
                                       arg=chart.element_handle(), timeout=30_000)
                thread.get_by_role("button", name="Promote").first.click()
                if page.locator("#modal-confirm").count():
                    page.locator("#modal-confirm").click()
                expect(thread).to_contain_text("Promoted", timeout=30_000)

                loop.run(stack.slack.deliver.slash_command(
                    f"classify {ASKED}", user=maria.id, channel=GENERAL_CHANNEL_ID))
                answer = main.locator(".msg:not(.ephemeral)", has_text=ASKED)
                expect(answer.first).to_contain_text("asked by @maria", timeout=180_000)
                expect(answer.first).to_contain_text("billing")

                dismiss = main.locator(".msg.ephemeral button.dismiss")
                while dismiss.count():
                    dismiss.first.click()
                    page.wait_for_timeout(200)
                # the result (metrics, Promote) at the top of the thread, the channel's newest
                done.first.evaluate("node => node.scrollIntoView({block: 'start'})")
                answer.first.evaluate("node => node.scrollIntoView({block: 'end'})")
                page.mouse.move(5, 5)  # no hover toolbar in the picture
                page.wait_for_timeout(500)
                out.write_bytes(page.screenshot())
            finally:
                browser.close()
    finally:
        loop.run(stack.stop(), timeout=90)
        loop.close()
    print(f"screenshot: {out} in {time.monotonic() - started:.0f} s", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--data", type=Path, default=ROOT / "examples" / "tickets.csv")
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for key in ("LMOPS_DATABASE_URL", "LMOPS_ARTIFACTS", "LMOPS_DEV_TOKEN", "SLACK_API_URL"):
        os.environ.pop(key, None)
    home = Path(tempfile.mkdtemp(prefix="lmops-screenshot-"))
    os.environ["LMOPS_HOME"] = str(home)  # the worker child reads the same folder
    try:
        take(args.out, home, args.data)
    finally:
        if args.keep:
            print(f"screenshot: data folder {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
