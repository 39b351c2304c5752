"""The local page in a real browser (issue 12, items 7 and 8): the "⏳ Classifying…" notice
goes once the answer is posted, ephemeral messages are gone after a reload (as in Slack), a
mention of yourself is a word in the line (not a full-width bar), and "(edited)" is not glued
to the reply count.

`lmops dev` (the bot and a worker) for the notice; the other checks need no bot: a local
workspace served from a thread, its messages posted by the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_dev_browser import CHROMIUM_FLAGS, chromium, dev_url  # noqa: F401 (fixtures)

READY = "body[data-ready='1']"


@pytest.fixture
def workspace() -> Iterator:
    """A local Slack workspace with its page, no app behind it."""
    from localslack import LocalSlack

    with LocalSlack() as slack:
        yield slack


@pytest.fixture
def page(chromium: str):  # noqa: F811 (the fixture imported above)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page
            assert errors == []
        finally:
            browser.close()


def _box(locator) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None
    return box


@pytest.mark.slow
def test_the_notice_goes_when_the_answer_is_posted(page, dev_url: str):  # noqa: F811
    from playwright.sync_api import expect

    page.goto(dev_url)
    expect(page.locator(READY)).to_have_count(1, timeout=15_000)
    page.evaluate("""() => {  // every ephemeral message the page ever showed
        window.seenEphemerals = [];
        new MutationObserver((changes) => {
            for (const change of changes) for (const node of change.addedNodes) {
                if (node.matches && node.matches('.msg.ephemeral')) window.seenEphemerals.push(node.textContent);
            }
        }).observe(document.querySelector('#messages'), {childList: true, subtree: true});
    }""")
    box = page.locator("#composer textarea")
    box.fill("/lm classify labels=positive,negative I love it")
    box.dispatch_event("input")
    box.press("Enter")
    main = page.locator("#messages")
    answer = main.locator(".msg:not(.ephemeral)", has_text="I love it")
    expect(answer).to_contain_text("positive", timeout=120_000)
    expect(main.locator(".msg.ephemeral", has_text="Classifying")).to_have_count(0, timeout=10_000)
    assert any("Classifying" in text for text in page.evaluate("window.seenEphemerals"))
    page.reload()
    expect(page.locator(READY)).to_have_count(1, timeout=15_000)
    expect(main.locator(".msg:not(.ephemeral)", has_text="I love it")).to_contain_text("positive")
    expect(main.locator(".msg.ephemeral")).to_have_count(0)


@pytest.mark.slow
def test_ephemerals_are_gone_after_a_reload(page, workspace):
    from playwright.sync_api import expect

    from localslack import ADMIN_USER_ID, GENERAL_CHANNEL_ID

    ws = workspace.state
    ws.post_message(GENERAL_CHANNEL_ID, text="a message everyone sees", user=ADMIN_USER_ID)
    page.goto(workspace.page_url)
    expect(page.locator(READY)).to_have_count(1, timeout=15_000)
    main = page.locator("#messages")
    ws.post_ephemeral(GENERAL_CHANNEL_ID, ADMIN_USER_ID, text="only you see this")
    expect(main.locator(".msg.ephemeral", has_text="only you see this")).to_have_count(
        1, timeout=10_000)
    page.reload()
    expect(page.locator(READY)).to_have_count(1, timeout=15_000)
    expect(main.locator(".msg", has_text="a message everyone sees")).to_have_count(1)
    page.wait_for_timeout(500)
    expect(main.locator(".msg.ephemeral")).to_have_count(0)
    # one shown after the reload is shown, in this channel and after switching back to it
    ws.post_ephemeral(GENERAL_CHANNEL_ID, ADMIN_USER_ID, text="a new one")
    expect(main.locator(".msg.ephemeral", has_text="a new one")).to_have_count(1, timeout=10_000)
    page.locator("#channel-list a", has_text="random").click()
    expect(page.locator("#channel-title")).to_have_text("#random")
    page.locator("#channel-list a", has_text="general").click()
    expect(main.locator(".msg.ephemeral", has_text="a new one")).to_have_count(1, timeout=10_000)


@pytest.mark.slow
def test_a_mention_of_yourself_is_inline(page, workspace):
    from playwright.sync_api import expect

    from localslack import ADMIN_USER_ID, BOT_ID, BOT_USER_ID, GENERAL_CHANNEL_ID

    me = f"<@{ADMIN_USER_ID}>"
    rows = "\n".join(f":gear: running *Fine-tune #{n}* · {me} · today" for n in (3, 2, 1))
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*Jobs* (3)\n{rows}"}},
              {"type": "context", "elements": [{"type": "mrkdwn", "text": f"asked by {me}"}]}]
    workspace.state.post_message(GENERAL_CHANNEL_ID, text="jobs", user=BOT_USER_ID,
                                 bot_id=BOT_ID, blocks=blocks)
    page.goto(workspace.page_url)
    expect(page.locator(READY)).to_have_count(1, timeout=15_000)
    message = page.locator("#messages .msg", has_text="asked by")
    mentions = message.locator(".mention.me")
    expect(mentions).to_have_count(4)
    width = _box(message)["width"]
    for i in range(4):
        box = _box(mentions.nth(i))
        assert box["width"] < width / 4, f"mention {i} is {box['width']} px of {width}"
        assert box["height"] < 30, f"mention {i} is {box['height']} px high"
    context = _box(message.locator(".block-context"))
    assert context["height"] < 30  # "asked by @you" on one line
    section = message.locator(".block-section .block-text")
    line = float(section.evaluate("(node) => parseFloat(getComputedStyle(node).lineHeight)"))
    assert _box(section)["height"] < 4.5 * line  # four lines: the title and three rows


@pytest.mark.slow
def test_edited_is_apart_from_the_reply_count(page, workspace):
    from playwright.sync_api import expect

    from localslack import ADMIN_USER_ID, BOT_ID, BOT_USER_ID, GENERAL_CHANNEL_ID

    ws = workspace.state
    root = ws.post_message(GENERAL_CHANNEL_ID, text="status", user=BOT_USER_ID, bot_id=BOT_ID)
    for n in range(3):
        ws.post_message(GENERAL_CHANNEL_ID, text=f"reply {n}", user=ADMIN_USER_ID,
                        thread_ts=root.ts)
    ws.update_message(GENERAL_CHANNEL_ID, root.ts, text="status, updated", editor=BOT_USER_ID)
    page.goto(workspace.page_url)
    expect(page.locator(READY)).to_have_count(1, timeout=15_000)
    message = page.locator("#messages .msg", has_text="status, updated")
    edited, replies = message.locator(".edited"), message.locator(".replies")
    expect(edited).to_have_text("(edited)")
    expect(replies).to_contain_text("3 replies")
    e, r = _box(edited), _box(replies)
    below = r["y"] >= e["y"] + e["height"] - 1
    apart = r["x"] >= e["x"] + e["width"] + 4
    assert below or apart, f"(edited) at {e}, the reply count at {r}"
    assert "(edited)3" not in message.inner_text().replace(" ", "")
