"""bot.mrkdwn: hostile text can't mention anyone, forge links or break out of code spans."""

from __future__ import annotations

import re

import pytest

from bot.mrkdwn import (
    JOINER,
    bold,
    code,
    code_block,
    escape,
    mention,
    quote,
    slack_len,
    truncate,
)

HOSTILE = [
    "<!channel>", "<!here|here>", "<!everyone>", "<@U123ABC>", "<@U123|bob>",
    "<https://evil.example|click me>", "<#C123|general>", "<!subteam^S1|@devs>",
    "@channel", "@here", "@everyone", "@Channel please", "&lt;!channel&gt;",
    "```\n<!channel>\n```", "`<!here>`", "a & b < c > d",
]


def assert_inert(text: str) -> None:
    assert "<" not in text and ">" not in text.replace("&gt;", ""), text
    assert not re.search(r"@(channel|here|everyone)\b", text, re.IGNORECASE), text


@pytest.mark.parametrize("hostile", HOSTILE)
def test_escape_neutralises_mentions_and_links(hostile):
    assert_inert(escape(hostile))
    assert_inert(code(hostile).strip("`"))
    assert_inert(bold(hostile))


def test_escape_exact_forms():
    assert escape("<!channel>") == "&lt;!channel&gt;"
    assert escape("<https://evil|click>") == "&lt;https://evil|click&gt;"
    assert escape("Tom & Jerry") == "Tom &amp; Jerry"
    # Already-escaped text is escaped again, so Slack shows it literally.
    assert escape("&lt;") == "&amp;lt;"
    assert escape("@channel") == "@" + JOINER + "channel"
    assert escape("email me@channels.io") == "email me@channels.io"
    assert escape("@HERE now") == "@" + JOINER + "HERE now"
    assert escape(None) == ""
    assert escape(42) == "42"


def test_formatting_characters_are_kept():
    assert escape("*bold* _it_ ~s~") == "*bold* _it_ ~s~"


@pytest.mark.parametrize("text", ["a`b", "``", "```x```", "`", "x\ny", ""])
def test_inline_code_cannot_be_closed_early(text):
    out = code(text)
    assert out.startswith("`") and out.endswith("`")
    assert out.count("`") == 2
    assert "\n" not in out


@pytest.mark.parametrize("text", ["```", "a```b", "````", "x\n```\n<!channel>\n```\ny", "`"])
def test_code_block_cannot_be_closed_early(text):
    out = code_block(text)
    assert out.startswith("```\n") and out.endswith("\n```")
    inner = out[4:-4]
    assert "``" not in inner
    assert "<" not in inner


def test_code_block_limit():
    out = code_block("x" * 5000, limit=3000)
    assert slack_len(out) <= 3000
    assert out.endswith("…\n```")


def test_truncate_keeps_short_text_and_marks_cuts():
    assert truncate("hello", 10) == "hello"
    assert truncate("hello world", 8) == "hello w…"
    assert slack_len(truncate("a" * 4000, 3000)) == 3000
    with pytest.raises(ValueError):
        truncate("x", 0)


def test_truncate_never_splits_an_entity_or_markup():
    escaped = escape("a" * 8 + "&<>")
    for limit in range(9, len(escaped)):
        cut = truncate(escaped, limit)
        assert not re.search(r"&[A-Za-z0-9#]*$", cut.removesuffix("…")), cut
        assert slack_len(cut) <= limit
    built = "done by <@U123ABC> today"
    for limit in range(9, len(built)):
        cut = truncate(built, limit)
        assert "<@U" not in cut or "<@U123ABC>" in cut, cut


def test_truncate_counts_emoji_as_two():
    text = "😀" * 10
    assert slack_len(text) == 20
    cut = truncate(text, 7)
    assert slack_len(cut) <= 7 and cut.endswith("…")


def test_quote_and_mention():
    assert quote("a\n<b>") == "> a\n> &lt;b&gt;"
    assert mention("U123ABC") == "<@U123ABC>"
    assert mention("W0ABC12") == "<@W0ABC12>"
    assert mention("<!channel>") == "&lt;!channel&gt;"
    assert mention("u123") == "u123"
