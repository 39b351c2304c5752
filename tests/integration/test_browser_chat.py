"""In the browser: a DM to the bot is answered in the conversation, not in a thread, and "what
can you do?" gets what lmops does (issue 12, item 4)."""

from __future__ import annotations

import pytest
from test_dev_browser import CHROMIUM_FLAGS, chromium, dev_url  # noqa: F401 (fixtures)


@pytest.mark.slow
def test_a_dm_is_answered_in_the_conversation(chromium: str, dev_url: str):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(dev_url)
            expect(page.locator("body[data-ready='1']")).to_have_count(1, timeout=15_000)
            page.locator("#dm-list a").first.click()
            expect(page.locator("#channel-title")).not_to_have_text("#general")
            box = page.locator("#composer textarea")
            main = page.locator("#messages")

            # what lmops does, at once and without a model
            box.fill("what can you do?")
            box.press("Enter")
            answer = main.locator(".msg", has_text="/lm help")
            expect(answer).to_have_count(1, timeout=15_000)
            for capability in ("classify", "fine-tune", "evaluate", "upload a CSV"):
                expect(answer).to_contain_text(capability)

            # a question for the model: the reply follows it in the conversation
            box.fill("Say hello in one short sentence.")
            box.press("Enter")
            question = main.locator(".msg", has_text="Say hello in one short sentence.")
            expect(question).to_have_count(1, timeout=10_000)
            reply = main.locator(".msg", has_text="smollm2")
            expect(reply).to_have_count(1, timeout=180_000)
            expect(reply).not_to_contain_text("typing", timeout=180_000)
            shown = main.inner_text()
            assert shown.index("Say hello in one short sentence.") < shown.index("smollm2")
            expect(main.locator(".replies")).to_have_count(0)  # no thread anywhere
            assert not errors, errors
        finally:
            browser.close()
