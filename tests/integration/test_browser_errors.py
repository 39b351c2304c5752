"""In the browser: a `/lm` request that can't run is answered with why, and no promise of an
answer that never comes (issue 12, item 3)."""

from __future__ import annotations

import pytest

from test_dev_browser import CHROMIUM_FLAGS, chromium, dev_url  # noqa: F401 (fixtures)


@pytest.mark.slow
@pytest.mark.parametrize("text, needle", [
    ("/lm classify model=nosuch I love it", "no model 'nosuch'"),
    ("/lm finetune nosuchdata", "no data set 'nosuchdata'"),
])
def test_an_error_is_the_last_word(chromium: str, dev_url: str, text: str, needle: str):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.goto(dev_url)
            expect(page.locator("body[data-ready='1']")).to_have_count(1, timeout=15_000)
            box = page.locator("#composer textarea")
            box.fill(text)
            box.dispatch_event("input")
            box.press("Enter")
            messages = page.locator("#messages")
            expect(messages.locator(".msg.ephemeral", has_text=needle)).to_have_count(
                1, timeout=15_000)
            page.wait_for_timeout(2_000)  # anything that would follow has arrived by now
            shown = messages.inner_text()
            assert "Classifying" not in shown and "Queuing" not in shown
            assert "appears in this channel" not in shown
        finally:
            browser.close()
