"""Slack mrkdwn: escape text from users, files and models so nothing the bot posts can mention
`@channel`, ping a user or forge a link; code spans that backticks can't break out of; and
truncation that respects Slack's length limits.

Slack only gives `&`, `<` and `>` a meaning (`<!channel>`, `<@U123>`, `<https://x|label>`), so
escaping those three neutralises every mention and link. Bare `@channel`/`@here`/`@everyone`
become mentions when a message is posted with `link_names`, so they get an invisible joiner.
Lengths are counted the way Slack counts them (UTF-16 code units), so an emoji counts twice.
"""

from __future__ import annotations

import re
from typing import Any

#: Invisible character put after `@` in `@channel`, `@here`, `@everyone`.
JOINER = "\u200d"
#: Invisible character put between two backticks inside a code block.
_ZWSP = "\u200b"
#: What replaces a backtick inside an inline code span (looks alike, isn't markup).
_BACKTICK_LOOKALIKE = "\u02cb"
ELLIPSIS = "…"

_BROADCAST = re.compile(r"@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)
# Slack user ids (U.../W...); `_` also, for the local workspace of `lmops dev` (U_ADMIN).
USER_ID_PATTERN = r"[UW][A-Z0-9_]{2,}"
_USER_ID = re.compile(rf"^{USER_ID_PATTERN}$")
# What truncation must not cut in half: an entity (`&amp;`) or Slack markup (`<@U1>`).
_ENTITY_TAIL = re.compile(r"&[A-Za-z0-9#]*$")


def escape(text: Any) -> str:
    """`text` made inert for mrkdwn: `&<>` escaped, broadcast mentions defused.

    Formatting characters (`*`, `_`, `~`, backticks) are left alone: they can style text but
    never notify anyone or link anywhere.
    """
    text = "" if text is None else str(text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub("@" + JOINER, text)


def slack_len(text: str) -> int:
    """The length of `text` as Slack counts it (UTF-16 code units)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def truncate(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """`text` cut to at most `limit` Slack characters, ending in `ellipsis` when cut.

    Never ends in the middle of an entity (`&am`) or of Slack markup (`<@U12`), so escaped
    text stays escaped and a mention the bot built is either whole or gone.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if slack_len(text) <= limit:
        return text
    budget = limit - slack_len(ellipsis)
    if budget <= 0:
        return ellipsis[:limit]
    used = cut = 0
    for index, ch in enumerate(text):
        width = 2 if ord(ch) > 0xFFFF else 1
        if used + width > budget:
            break
        used += width
        cut = index + 1
    head = _ENTITY_TAIL.sub("", text[:cut])
    if head.rfind("<") > head.rfind(">"):
        head = head[: head.rfind("<")]
    return head.rstrip() + ellipsis


def code(text: Any) -> str:
    """An inline code span: escaped, on one line, with no backtick that could close it."""
    text = "" if text is None else str(text)
    text = " ".join(text.split()) or " "
    return "`" + escape(text.replace("`", _BACKTICK_LOOKALIKE)) + "`"


def code_block(text: Any, limit: int | None = None) -> str:
    """A fenced code block that backticks in `text` can't close; at most `limit` characters."""
    inner = escape("" if text is None else str(text)).strip("\n")
    inner = re.sub(r"`(?=`)", "`" + _ZWSP, inner)
    if limit is not None:
        inner = truncate(inner, max(limit - 8, 1))
    return "```\n" + inner + "\n```"


def quote(text: Any) -> str:
    """A block quote of escaped `text` (every line quoted)."""
    lines = escape(text).split("\n")
    return "\n".join("> " + line for line in lines)


def bold(text: Any) -> str:
    """Escaped `text` in bold (empty text stays empty)."""
    text = escape(text).strip()
    return f"*{text}*" if text else ""


def mention(user_id: Any) -> str:
    """`<@U123>` for a real Slack user id; anything else is shown escaped, never as markup."""
    user_id = "" if user_id is None else str(user_id)
    return f"<@{user_id}>" if _USER_ID.match(user_id) else escape(user_id)
