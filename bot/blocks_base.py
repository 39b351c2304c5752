"""Block Kit primitives that keep every block within Slack's limits, small formatters, and
`check_blocks`, which lists what Slack would refuse in a message.

Every builder in `bot.blocks` is made of these: texts are truncated here, so a long model
reply or a data set with 500 labels can't make `chat.postMessage` fail.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from bot.mrkdwn import escape, slack_len, truncate

MAX_BLOCKS = 50
SECTION_TEXT = 3000
FIELD_TEXT = 2000
MAX_FIELDS = 10
CONTEXT_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ACTION_ID = 255
MAX_ACTIONS = 25
CONFIRM_TITLE = 100
CONFIRM_TEXT = 300
CONFIRM_BUTTON = 30

Block = dict[str, Any]


def _mrkdwn(text: str, limit: int) -> dict[str, str]:
    return {"type": "mrkdwn", "text": truncate(text, limit) if text.strip() else "_(empty)_"}


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text.strip() or "-", limit), "emoji": True}


def section(text: str | None = None, *, fields: list[str] | None = None,
            accessory: dict[str, Any] | None = None) -> Block:
    """A section of mrkdwn `text` (already escaped) and/or up to 10 `fields`."""
    block: Block = {"type": "section"}
    if text is not None or not fields:
        block["text"] = _mrkdwn(text or "", SECTION_TEXT)
    if fields:
        block["fields"] = [_mrkdwn(f, FIELD_TEXT) for f in fields[:MAX_FIELDS]]
    if accessory:
        block["accessory"] = accessory
    return block


def header(text: str) -> Block:
    """A header (plain text, not escaped: Slack shows it as it is)."""
    return {"type": "header", "text": _plain(text, HEADER_TEXT)}


def context(elements: list[str]) -> Block:
    """A context line of up to 10 mrkdwn elements (already escaped)."""
    return {"type": "context",
            "elements": [_mrkdwn(e, CONTEXT_TEXT) for e in elements[:MAX_CONTEXT_ELEMENTS]]}


def divider() -> Block:
    return {"type": "divider"}


def confirm(title: str, text: str, ok: str, deny: str = "Keep it") -> dict[str, Any]:
    """A confirmation dialog for a button (plain texts)."""
    return {"title": _plain(title, CONFIRM_TITLE), "text": _plain(text, CONFIRM_TEXT),
            "confirm": _plain(ok, CONFIRM_BUTTON), "deny": _plain(deny, CONFIRM_BUTTON)}


def button(text: str, action_id: str, value: Any, *, style: str | None = None,
           confirm_dialog: dict[str, Any] | None = None) -> dict[str, Any]:
    """A button; `value` comes back to the bot in the interaction payload."""
    value = str(value)
    if not value or len(value) > BUTTON_VALUE:
        raise ValueError(f"button value must be 1 to {BUTTON_VALUE} characters, not {len(value)}")
    element: dict[str, Any] = {"type": "button", "text": _plain(text, BUTTON_TEXT),
                               "action_id": action_id[:ACTION_ID], "value": value}
    if style:
        element["style"] = style
    if confirm_dialog:
        element["confirm"] = confirm_dialog
    return element


def actions(elements: list[dict[str, Any]]) -> Block:
    return {"type": "actions", "elements": elements[:MAX_ACTIONS]}


def text_sections(text: str, max_blocks: int = 10) -> list[Block]:
    """Long mrkdwn text as several sections, split at line ends (the last one truncated)."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        while slack_len(line) > SECTION_TEXT:
            if current:
                chunks.append(current)
                current = ""
            piece = truncate(line, SECTION_TEXT, ellipsis="") or line[: SECTION_TEXT // 2]
            chunks.append(piece)
            line = line[len(piece):]
        candidate = f"{current}\n{line}" if current else line
        if slack_len(candidate) > SECTION_TEXT:
            chunks.append(current)
            current = line
        else:
            current = candidate
    chunks.append(current)
    chunks = [c for c in chunks if c.strip()] or [""]
    if len(chunks) > max_blocks:
        chunks = chunks[:max_blocks]
        chunks[-1] = truncate(chunks[-1] + "\n…", SECTION_TEXT)
    return [section(chunk) for chunk in chunks]


def lines_sections(lines: list[str], max_blocks: int = 10) -> list[Block]:
    """List lines (already escaped) packed into as few sections as fit."""
    return text_sections("\n".join(lines), max_blocks)


def fit(blocks: list[Block], limit: int = MAX_BLOCKS) -> list[Block]:
    """At most `limit` blocks; when cut, the last one says how many were left out."""
    if len(blocks) <= limit:
        return blocks
    left_out = len(blocks) - (limit - 1)
    return blocks[: limit - 1] + [context([f"_{left_out} more not shown_"])]


def check_blocks(blocks: list[Block]) -> list[str]:
    """What Slack would refuse in this list of blocks (an empty list when it is fine)."""
    problems: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks (max {MAX_BLOCKS})")

    def text_ok(where: str, obj: Any, limit: int) -> None:
        if not isinstance(obj, dict) or obj.get("type") not in ("mrkdwn", "plain_text"):
            problems.append(f"{where}: not a text object")
        elif not obj.get("text") or slack_len(obj["text"]) > limit:
            problems.append(f"{where}: text of {slack_len(obj.get('text') or '')} chars "
                            f"(1 to {limit})")

    for i, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "section":
            if "text" in block:
                text_ok(f"block {i} text", block["text"], SECTION_TEXT)
            fields = block.get("fields", [])
            if len(fields) > MAX_FIELDS:
                problems.append(f"block {i}: {len(fields)} fields (max {MAX_FIELDS})")
            for j, f in enumerate(fields):
                text_ok(f"block {i} field {j}", f, FIELD_TEXT)
            if "text" not in block and not fields:
                problems.append(f"block {i}: a section needs text or fields")
        elif kind == "header":
            text_ok(f"block {i} header", block.get("text"), HEADER_TEXT)
        elif kind == "context":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
                problems.append(f"block {i}: {len(elements)} context elements")
            for j, e in enumerate(elements):
                text_ok(f"block {i} element {j}", e, CONTEXT_TEXT)
        elif kind == "actions":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= MAX_ACTIONS:
                problems.append(f"block {i}: {len(elements)} actions (1 to {MAX_ACTIONS})")
            ids = [e.get("action_id") for e in elements]
            if len(set(ids)) != len(ids):
                problems.append(f"block {i}: repeated action_id")
            for j, e in enumerate(elements):
                where = f"block {i} button {j}"
                text_ok(where, e.get("text"), BUTTON_TEXT)
                if not e.get("action_id") or len(e["action_id"]) > ACTION_ID:
                    problems.append(f"{where}: no action_id")
                if not e.get("value") or len(str(e["value"])) > BUTTON_VALUE:
                    problems.append(f"{where}: no value")
        elif kind not in ("divider", "image"):
            problems.append(f"block {i}: unexpected type {kind!r}")
    return problems


# ---------------------------------------------------------------------------------------------
# Formatters


def progress_bar(fraction: float | None, width: int = 10) -> str:
    """`▓▓▓▓░░░░░░ 42%` (the bar rounded down, the number as `percent` writes it: 100% means
    done)."""
    fraction = min(max(float(fraction or 0.0), 0.0), 1.0)
    filled = math.floor(fraction * width + 1e-9)
    return "▓" * filled + "░" * (width - filled) + f" {percent(fraction)}"


def percent(value: float | None) -> str:
    """A fraction as whole percents, the one way every message writes them: `87%`, `100%`
    only for all of it (`99%` for 0.996), `<1%` for a little more than nothing, `0%`; `–`
    when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value) * 100
    shown = math.floor(value + 0.5)
    if shown >= 100 > value:
        shown = 99
    if shown == 0 and value > 0:
        return "<1%"
    return f"{shown}%"


def number(value: Any, digits: int = 4) -> str:
    """A metric with `digits` significant digits; `–` when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):.{digits}g}"


def duration(seconds: float | None) -> str:
    """`45s`, `3m 20s`, `1h 05m`, `2d 3h`; `–` when unknown."""
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return "–"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def when(moment: Any) -> str:
    """A time in the reader's own time zone (Slack's date markup), or `` when unknown."""
    if moment is None or moment == "":
        return ""
    try:
        stamp = moment if isinstance(moment, datetime) else datetime.fromisoformat(str(moment))
    except ValueError:
        return escape(str(moment))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    fallback = stamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(stamp.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"
