"""The words of a slash command's text: a tokenizer that keeps quoted phrases and Slack markup
(`<@U1|bob>`, `<https://x|label>`) together, Slack markup turned back into plain text, and
`clean`, which takes NUL, control characters and bidi overrides out of what users type."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Token:
    """One word of the command text: its unquoted `value` and where it was (`raw`, offsets)."""

    value: str
    raw: str
    start: int
    end: int
    quoted: bool = False
    unclosed: bool = False


OPEN_QUOTES = {'"': '"”', "“": '"”“', "”": '"”'}
#: Characters taken out of what users type: NUL and the other C0 controls but tab, newline
#: and carriage return, DEL, and the bidirectional embeddings, overrides and isolates
#: (U+202A-U+202E, U+2066-U+2069) that make text read differently from what it is.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """`text` without NUL, control characters and bidi overrides (see `_INVISIBLE`)."""
    return _INVISIBLE.sub("", text)
_SLACK_MARKUP = re.compile(r"<(?:[@#!]|https?://|mailto:)[^<>]*>")


def tokenize(text: str) -> list[Token]:
    """Split on whitespace; `"..."` (also curly quotes) groups words, `\\"` escapes a quote
    inside; Slack markup such as `<@U123|bob smith>` stays one word."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start, parts, quoted, unclosed = i, [], False, False
        while i < n and not text[i].isspace():
            ch = text[i]
            markup = _SLACK_MARKUP.match(text, i) if ch == "<" else None
            if markup:
                parts.append(markup.group())
                i = markup.end()
            elif ch in OPEN_QUOTES:
                closers, j, inner = OPEN_QUOTES[ch], i + 1, []
                while j < n and text[j] not in closers:
                    if text[j] == "\\" and j + 1 < n and text[j + 1] in '"\\“”':
                        j += 1
                    inner.append(text[j])
                    j += 1
                if j < n:
                    parts.extend(inner)
                    quoted, i = True, j + 1
                else:
                    parts.append(ch)
                    unclosed, i = True, i + 1
            else:
                parts.append(ch)
                i += 1
        tokens.append(Token("".join(parts), text[start:i], start, i, quoted, unclosed))
    return tokens


def from_slack(text: str) -> str:
    """Text as the user saw it: Slack markup (`<@U1|bob>`, `<https://x|label>`, `<!here>`)
    turned back into plain words and `&amp;`/`&lt;`/`&gt;` unescaped."""

    def plain(match: re.Match[str]) -> str:
        body = match.group()[1:-1]
        target, _, label = body.partition("|")
        if target.startswith("@"):
            return "@" + (label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            return label or "@" + target[1:].split("^")[0]
        return label or target

    text = _SLACK_MARKUP.sub(plain, text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
