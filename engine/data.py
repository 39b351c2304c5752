"""Data files: read CSV/TSV/JSONL/JSON/TXT, find the text/label/dialogue columns, load data sets.

Only the standard library is imported here (the bot validates uploads with this module and must
stay light): no torch, transformers, pandas or numpy.

Row numbers: every message says "row N", where N is the line of the file on which that row
starts, as an editor shows it. In a CSV/TSV the header is line 1, so the first data row is
usually row 2 (blank lines and multi-line quoted values shift the rest); in JSONL row N is line
N; in a JSON list it is the line where the object begins (its position in the list when
several objects share a line, as in a one-line file).

Validation, splitting and label checks live in `engine.data_validation` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.data_formats import Source, Table, read_table
from engine.data_validation import (
    DataReportError,
    ValidationReport,
    check_labels,
    format_list,
    format_rows,
    stratified_split,
    validate_classification,
    validate_dialogue,
)
from engine.errors import DataError, LabelMismatchError

__all__ = [
    "Columns", "DataError", "DataReportError", "DialogueSet", "LabelMismatchError", "LabeledSet",
    "Table", "TextSet", "ValidationReport", "check_labels", "detect_columns", "load_classification",
    "load_dialogue", "load_texts", "read_table", "stratified_split", "validate_classification",
    "validate_dialogue",
]


TEXT_NAMES = ("text", "sentence", "utterance", "question", "query", "content", "message",
              "review", "input")
LABEL_NAMES = ("label", "labels", "category", "intent", "sentiment", "class", "target", "tag")
DIALOGUE_PAIRS = (("prompt", "response"), ("prompt", "completion"), ("input", "output"),
                  ("question", "answer"), ("instruction", "response"))
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Columns:
    """The columns a task uses: `text` (+ `label`) to classify; `prompt`/`response` or
    `messages` (+ optional `system`) for dialogue."""

    task: str
    text: str | None = None
    label: str | None = None
    prompt: str | None = None
    response: str | None = None
    messages: str | None = None
    system: str | None = None

    def __post_init__(self) -> None:
        if self.task not in ("classify", "chat"):
            raise ValueError(f"task must be 'classify' or 'chat', not {self.task!r}")
        if self.task == "classify" and not self.text:
            raise ValueError(f"a classify task needs a text column, not {self.text!r}")
        if self.task == "chat" and not (self.messages or (self.prompt and self.response)):
            raise ValueError("a chat task needs a messages column or prompt and response columns, "
                             f"not prompt={self.prompt!r} response={self.response!r}")


def _pick(table: Table, names: Sequence[str], exclude: Iterable[str | None] = ()) -> list[str]:
    skip = set(exclude)
    by_name = {c.strip().lower(): c for c in table.columns if c not in skip}
    return [by_name[n] for n in names if n in by_name]


def _named(table: Table, wanted: str) -> str:
    if wanted in table.columns:
        return wanted
    for column in table.columns:
        if column.strip().lower() == wanted.strip().lower():
            return column
    raise DataError(f"{table.source} has no column '{wanted}' (columns: "
                    f"{format_list(table.columns, 30)})")


def detect_columns(table: Table, *, task: str = "classify", text_column: str | None = None,
                   label_column: str | None = None, require_label: bool = True) -> Columns:
    """Find the text and label columns (task "classify") or the dialogue columns ("chat").

    Names are matched case-insensitively: text among TEXT_NAMES (then `prompt`), label among
    LABEL_NAMES; a column literally named `text`/`label` wins over the others. A one-column
    table is all text. Raises `DataError` naming the columns seen and how to name them when no
    column, or several equally good ones, fit.
    """
    task = "chat" if task == "dialogue" else task
    if task == "chat":
        if text_column or label_column:
            raise ValueError("text_column and label_column are for task 'classify', not "
                             f"{task!r}: got {text_column!r}, {label_column!r}")
        return _detect_dialogue(table)
    if task != "classify":
        raise ValueError(f"task must be 'classify' or 'chat', not {task!r}")
    seen, src = format_list(table.columns, 30), table.source
    label_hint = "the label column 'label' (or category, intent, sentiment, ...)"
    label = _named(table, label_column) if label_column else None
    if text_column:
        text = _named(table, text_column)
    elif len(table.columns) == 1:
        text = table.columns[0]
    else:
        found = _pick(table, TEXT_NAMES, [label]) or _pick(table, ["prompt"], [label])
        if len(found) > 1 and found[0].strip().lower() == "text":
            found = found[:1]
        if not found:
            also = f" and {label_hint}" if require_label else ""
            raise DataError(f"{src}: no text column among: {seen}; name it 'text' (or sentence, "
                            f"utterance, question, ...){also}")
        if len(found) > 1:
            raise DataError(f"{src}: several possible text columns: {format_list(found)}; name "
                            "the one to use 'text' (or remove the others)")
        text = found[0]
    if label is None and require_label:
        found = [c for c in _pick(table, LABEL_NAMES) if c != text]
        if len(found) > 1 and found[0].strip().lower() == "label":
            found = found[:1]
        if not found:
            raise DataError(f"{src}: no label column among: {seen}; name {label_hint}")
        if len(found) > 1:
            raise DataError(f"{src}: several possible label columns: {format_list(found)}; name "
                            "the one to use 'label' (or remove the others)")
        label = found[0]
    if label is not None and label == text:
        raise DataError(f"{src}: '{text}' can't be both the text and the label column")
    return Columns("classify", text=text, label=label)


def _detect_dialogue(table: Table) -> Columns:
    system = next(iter(_pick(table, ["system"])), None)
    if messages := _pick(table, ["messages"]):
        return Columns("chat", messages=messages[0], system=system)
    pairs = [p for p in DIALOGUE_PAIRS if len(_pick(table, p)) == 2]
    if len(pairs) == 1:
        prompt, response = _pick(table, pairs[0])
        return Columns("chat", prompt=prompt, response=response, system=system)
    names = ", ".join("/".join(p) for p in DIALOGUE_PAIRS[1:])
    if pairs:
        raise DataError(f"{table.source}: several possible dialogue column pairs: "
                        f"{', '.join('/'.join(p) for p in pairs)}; keep one pair")
    raise DataError(f"{table.source}: no dialogue columns among: {format_list(table.columns, 30)}; "
                    f"name them 'prompt' and 'response' (or {names}), or use JSONL rows "
                    '{"messages": [{"role": "user", "content": ...}, ...]}')


@dataclass
class TextSet:
    """Texts to predict on; `rows[i]` is the file row of `texts[i]`. Empty texts are left out
    and listed in `empty_rows`."""

    texts: list[str]
    rows: list[int]
    source: str = ""
    column: str = "text"
    empty_rows: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.rows):
            raise ValueError(f"{len(self.texts)} texts but {len(self.rows)} row numbers")

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class LabeledSet:
    """A classification data set: `texts[i]` has `labels[i]` and comes from file row `rows[i]`."""

    texts: list[str]
    labels: list[str]
    rows: list[int]
    source: str = ""
    text_column: str = "text"
    label_column: str = "label"

    def __post_init__(self) -> None:
        if not len(self.texts) == len(self.labels) == len(self.rows):
            raise ValueError(f"{len(self.texts)} texts, {len(self.labels)} labels and "
                             f"{len(self.rows)} row numbers; they must match")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def label_names(self) -> list[str]:
        """The distinct labels, sorted."""
        return sorted(set(self.labels))

    def subset(self, indices: Iterable[int]) -> LabeledSet:
        """The rows at these positions (not row numbers), in the given order."""
        idx = list(indices)
        return LabeledSet([self.texts[i] for i in idx], [self.labels[i] for i in idx],
                          [self.rows[i] for i in idx], self.source, self.text_column,
                          self.label_column)

    def without_rows(self, rows: Iterable[int]) -> LabeledSet:
        """A copy without the given file rows (for example `report.dropped_rows`)."""
        drop = set(rows)
        return self.subset(i for i, r in enumerate(self.rows) if r not in drop)


@dataclass
class DialogueSet:
    """Conversations (lists of {"role", "content"}); `rows[i]` is the file row of the i-th."""

    conversations: list[list[dict[str, str]]]
    rows: list[int]
    source: str = ""

    def __post_init__(self) -> None:
        if len(self.conversations) != len(self.rows):
            raise ValueError(f"{len(self.conversations)} conversations but {len(self.rows)} rows")

    def __len__(self) -> int:
        return len(self.conversations)

    def subset(self, indices: Iterable[int]) -> DialogueSet:
        """The conversations at these positions (not row numbers), in the given order."""
        idx = list(indices)
        return DialogueSet([self.conversations[i] for i in idx], [self.rows[i] for i in idx],
                           self.source)

    def without_rows(self, rows: Iterable[int]) -> DialogueSet:
        """A copy without the given file rows (for example `report.dropped_rows`)."""
        drop = set(rows)
        return self.subset(i for i, r in enumerate(self.rows) if r not in drop)


def _as_table(source: Source | Table, filename: str | None) -> Table:
    return source if isinstance(source, Table) else read_table(source, filename=filename)


def _as_text(value: Any) -> str | None:
    """A cell as stripped text; None for a list or object (not a single value)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return None
    return str(value).strip()


def _raise_bad(source: str, bad: list[tuple[int, str]]) -> None:
    if bad:
        shown = "; ".join(f"row {n}: {why}" for n, why in bad[:10])
        more = f"; and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise DataError(f"{source}: {shown}{more}")


def load_texts(source: Source | Table, *, text_column: str | None = None,
               filename: str | None = None) -> TextSet:
    """Texts to predict on, from a path, uploaded bytes (name them with `filename`) or a Table.

    Empty texts are skipped and listed in `empty_rows`; a file with no text raises `DataError`.
    """
    table = _as_table(source, filename)
    column = detect_columns(table, text_column=text_column, require_label=False).text or ""
    texts, rows, empty, bad = [], [], [], []
    for number, row in zip(table.row_numbers, table.rows):
        text = _as_text(row.get(column))
        if text is None:
            bad.append((number, f"'{column}' is a list or object, not text"))
        elif text:
            texts.append(text)
            rows.append(number)
        else:
            empty.append(number)
    _raise_bad(table.source, bad)
    if not texts:
        raise DataError(f"{table.source}: every text in column '{column}' is empty")
    return TextSet(texts, rows, table.source, column, empty)


def load_classification(source: Source | Table, *, text_column: str | None = None,
                        label_column: str | None = None, max_chars: int | None = None,
                        filename: str | None = None) -> LabeledSet:
    """A labeled data set. Rows with an empty text or label are kept (validation reports them).

    Raises `DataError` for undetectable columns, list/object cells (multi-label data isn't
    supported) and, when `max_chars` is given, texts longer than that.
    """
    if max_chars is not None and max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, not {max_chars!r}")
    table = _as_table(source, filename)
    cols = detect_columns(table, text_column=text_column, label_column=label_column)
    texts, labels, bad = [], [], []
    for number, row in zip(table.row_numbers, table.rows):
        text, label = _as_text(row.get(cols.text)), _as_text(row.get(cols.label))
        if text is None:
            bad.append((number, f"'{cols.text}' is a list or object, not text"))
        if label is None:
            bad.append((number, f"'{cols.label}' is a list or object (one label per row)"))
        texts.append(text or "")
        labels.append(label or "")
    _raise_bad(table.source, bad)
    if max_chars is not None:
        long = [n for n, t in zip(table.row_numbers, texts) if len(t) > max_chars]
        if long:
            raise DataError(f"{table.source}: {format_rows(long)} longer than {max_chars} "
                            f"characters (the longest has {max(len(t) for t in texts)})")
    return LabeledSet(texts, labels, list(table.row_numbers), table.source, cols.text,
                      cols.label or "")


def _conversation(row: dict[str, Any], cols: Columns) -> tuple[list[dict[str, str]], str | None]:
    """One row as messages, or the reason it isn't a valid conversation."""
    system = _as_text(row.get(cols.system)) if cols.system else ""
    head = [{"role": "system", "content": system}] if system else []
    if not cols.messages:
        prompt, response = _as_text(row.get(cols.prompt)), _as_text(row.get(cols.response))
        if prompt is None or response is None:
            return [], "the prompt or response is a list or object, not text"
        return head + [{"role": "user", "content": prompt},
                       {"role": "assistant", "content": response}], None
    value = row.get(cols.messages)
    if not isinstance(value, list) or not value:
        return [], f"'{cols.messages}' is not a list of messages"
    messages = []
    for i, m in enumerate(value, 1):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            return [], f"message {i} has no text \"content\""
        if m.get("role") not in ROLES:
            return [], f"message {i} has role {m.get('role')!r} (roles: {', '.join(ROLES)})"
        messages.append({"role": m["role"], "content": m["content"].strip()})
    return head + messages, None


def load_dialogue(source: Source | Table, *, filename: str | None = None) -> DialogueSet:
    """Conversations from `messages` rows or prompt/response-style columns.

    Roles must be system, user or assistant and every content a string; otherwise `DataError`
    names the rows. Whether each ends with the assistant is checked by `validate_dialogue`.
    """
    table = _as_table(source, filename)
    cols = detect_columns(table, task="chat")
    conversations, bad = [], []
    for number, row in zip(table.row_numbers, table.rows):
        messages, why = _conversation(row, cols)
        if why:
            bad.append((number, why))
        conversations.append(messages)
    _raise_bad(table.source, bad)
    return DialogueSet(conversations, list(table.row_numbers), table.source)
