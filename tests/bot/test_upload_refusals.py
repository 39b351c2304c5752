"""Files that can't be read at all (issue 12, item 9): an empty or a binary upload is answered with
one line that says what is wrong ("the file is empty", "this looks like a binary file, not
CSV/TSV/JSONL/JSON"), and no "fix the rows above" when no rows are listed above."""

from __future__ import annotations

import pytest

from localslack import GENERAL_CHANNEL_ID

pytestmark = pytest.mark.asyncio
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00"
NO_NUL = bytes([0x1f, 0x8b, 0x08, 0x08, 0xff, 0x01, 0x02, 0xc3, 0x28, 0x9c]) * 20  # gzip-like


async def answer(bot, name: str, content: bytes | str) -> str:
    sent = await bot.slack.deliver.file_share(name, content)
    assert all(d.status == 200 for d in sent)
    ts = sent[0].payload["event"]["ts"]
    replies = await bot.wait(lambda: bot.ws.replies(GENERAL_CHANNEL_ID, ts)[1:])
    return bot.text(replies[0])


@pytest.mark.parametrize("name, content, says", [
    ("empty.csv", b"", "empty.csv: the file is empty"),
    ("blank.csv", b" \n\n  \n", "blank.csv: the file is empty"),
    ("photo.csv", PNG, "photo.csv: this looks like a binary file, not CSV/TSV/JSONL/JSON"),
    ("archive.jsonl", NO_NUL, "archive.jsonl: this looks like a binary file, not CSV/TSV/JSONL/JSON"),
    # another encoding is text, not binary
    ("latin.csv", "text,label\ncafé au lait,good\n".encode("latin-1"), "latin.csv is not UTF-8 text"),
])
async def test_unreadable_uploads_say_what_is_wrong(bot, name, content, says):
    text = await answer(bot, name, content)
    assert "Can't be used" in text and says in text, text
    assert "rows above" not in text.lower(), text
    assert "Nothing was kept" in text
    assert ("binary" in text) == ("binary" in says), text


async def test_only_row_problems_point_at_the_rows(bot):
    assert "rows above" not in (await answer(bot, "empty.csv", b"")).lower()
    text = await answer(bot, "one-label.csv", "text,label\n" + "".join(
        f"the app crashes {i},bug\n" for i in range(10)))
    assert "only one label" in text and "Fix the rows above" in text, text
