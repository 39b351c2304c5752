"""Reading data files (CSV, TSV, JSONL, JSON, TXT) into a `Table`, with file row numbers; and
the check of an uploaded file that the bot runs in a child process (`upload_main`).

Standard library only (see `engine.data`). Row numbers are the file lines on which rows start.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from engine.data_validation import format_list, format_rows
from engine.errors import DataError

Source = str | os.PathLike[str] | bytes
FORMATS = ("csv", "tsv", "jsonl", "json", "txt")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
               ".json": "json", ".txt": "txt"}

@dataclass
class Table:
    """A data file as rows of column -> value; `row_numbers[i]` is the file line of `rows[i]`."""

    columns: list[str]
    rows: list[dict[str, Any]]
    source: str
    row_numbers: list[int] = field(default_factory=list)
    format: str = "csv"

    def __post_init__(self) -> None:
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"columns must be unique, not {self.columns!r}")
        if not self.row_numbers:
            self.row_numbers = list(range(1, len(self.rows) + 1))
        if len(self.row_numbers) != len(self.rows):
            raise ValueError(
                f"row_numbers has {len(self.row_numbers)} entries for {len(self.rows)} rows"
            )
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {self.format!r}")


def read_table(path_or_bytes: Source, *, filename: str | None = None,
               max_rows: int | None = None) -> Table:
    """Read a CSV, TSV, JSONL, JSON (a list of objects, or {"data": [...]}) or TXT file.

    The format comes from the extension of `filename` (or of the path), and is sniffed from the
    content when there is none. Text must be UTF-8, with or without a BOM. A `.txt` file holds
    one text per line (column `text`) unless its first line has a tab (then it is a TSV).
    Raises `DataError` for a missing or unreadable file, non-UTF-8 text, an empty file, a file
    without data rows, malformed rows (naming the row), JSON nested too deeply to read, and more
    than `max_rows` rows (reading stops there).
    """
    if isinstance(path_or_bytes, bytes):
        name, data = filename or "upload", path_or_bytes
    else:
        name = os.fspath(path_or_bytes)
        try:
            with open(name, "rb") as f:
                data = f.read()
        except OSError as e:
            raise DataError(f"can't read {name}: {e.strerror or e}") from None
        filename = filename or name
    ext = os.path.splitext(filename or "")[1].lower()
    if ext in (".xlsx", ".xls", ".ods"):
        raise DataError(f"{name} is a spreadsheet; save it as CSV (UTF-8) and try again")
    text = _decode(data, name)
    if not text.strip():
        raise DataError(f"{name}: the file is empty")
    fmt = _EXTENSIONS.get(ext) or _sniff(text)
    if fmt == "txt" and "\t" in text.lstrip().split("\n", 1)[0]:
        fmt = "tsv"
    if fmt in ("json", "jsonl"):
        try:
            table = _read_json(text, name, fmt, max_rows)
        except RecursionError:
            raise DataError(f"{name} is nested too deeply (JSON lists or objects inside each "
                            "other); rows are flat objects") from None
    elif fmt == "txt":
        lines = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                lines.append((i, line.strip()))
                _check_rows(len(lines), max_rows, name)
        table = Table(["text"], [{"text": t} for _, t in lines], name, [i for i, _ in lines], "txt")
    else:
        table = _read_delimited(text, name, fmt, max_rows)
    if not table.rows:
        raise DataError(f"{name} has no data rows" + (" (only a header)" if table.columns else ""))
    return table


def _check_rows(n: int, max_rows: int | None, name: str) -> None:
    if max_rows is not None and n > max_rows:
        raise DataError(f"{name} has more than {max_rows:,} rows; data sets may have at most "
                        f"{max_rows:,}")


_BINARY = "this looks like a binary file, not CSV/TSV/JSONL/JSON"
_CONTROL = frozenset(range(32)) - {7, 8, 9, 10, 11, 12, 13, 27}  # in no text encoding's text


def _decode(data: bytes, name: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{name} is UTF-16 text, not UTF-8; save it as UTF-8 and try again")
    if data.startswith(b"PK\x03\x04"):
        raise DataError(f"{name} is a zip or spreadsheet file; save it as CSV (UTF-8)")
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise DataError(f"{name}: {_BINARY} (a NUL byte on line {line})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        if any(b in _CONTROL for b in data[:4096]):  # not text in another encoding either
            raise DataError(f"{name}: {_BINARY}") from None
        raise DataError(
            f"{name} is not UTF-8 text (line {line}, byte {e.start}); "
            "save it as UTF-8 and try again"
        ) from None
    return text.removeprefix("\ufeff")


def _sniff(text: str) -> str:
    head = text.lstrip()
    if head[0] in "[{":
        return "json"  # _read_json falls back to JSONL when it finds several values
    return "tsv" if "\t" in head.split("\n", 1)[0] else "csv"


def _read_delimited(text: str, name: str, fmt: str, max_rows: int | None) -> Table:
    first = text.lstrip().split("\n", 1)[0]
    delimiter = "\t" if fmt == "tsv" else ";" if ";" in first and "," not in first else ","
    try:
        return _parse_delimited(text, name, fmt, delimiter, csv.QUOTE_MINIMAL, max_rows)
    except csv.Error as e:
        if fmt != "tsv":
            raise DataError(f"{name}: {e.args[0]}") from None
    return _parse_delimited(text, name, fmt, delimiter, csv.QUOTE_NONE,  # plain TSV, no quoting
                            max_rows)


def _parse_delimited(text: str, name: str, fmt: str, delimiter: str, quoting: int,
                     max_rows: int | None) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting,
                        strict=True)
    header: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    end = 0
    while True:
        start = end + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            hint = "a quote is never closed" if "end of data" in str(e) else str(e)
            raise csv.Error(f"row {start} is malformed ({hint}); quote values that contain "
                            f"'{delimiter}', quotes or line breaks") from None
        end = reader.line_num
        if not any(v.strip() for v in record):
            continue
        if header is None:
            header = [h.strip() for h in record]
        else:
            records.append((start, record))
            _check_rows(len(records), max_rows, name)
    header = header or []
    too_long = [n for n, r in records if len(r) > len(header)]
    if too_long:
        verb = "has" if len(too_long) == 1 else "have"
        raise DataError(f"{name}: {format_rows(too_long)} {verb} "
                        f"more values than the {len(header)} columns of the header; quote "
                        f"values that contain '{delimiter}'")
    for i, column in enumerate(header):
        if not column:
            header[i] = f"column_{i + 1}"
    if len(set(header)) != len(header):
        twice = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"{name}: the header names {format_list(twice)} more than once")
    rows = [dict(zip(header, r + [""] * (len(header) - len(r)))) for _, r in records]
    return Table(header, rows, name, [n for n, _ in records], fmt)


def _read_json(text: str, name: str, fmt: str, max_rows: int | None) -> Table:
    decoder = json.JSONDecoder()
    if fmt == "json" or text.lstrip().startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            if not (e.msg == "Extra data" and text.lstrip().startswith("{")):
                raise DataError(f"{name} is not valid JSON: {e.msg} (line {e.lineno}, column "
                                f"{e.colno})") from None
        else:
            return _json_table(value, text, name, decoder, max_rows)
    items: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                items.append((number, json.loads(line)))
            except json.JSONDecodeError as e:
                raise DataError(f"{name}: row {number} is not valid JSON: {e.msg} (column "
                                f"{e.colno})") from None
            _check_rows(len(items), max_rows, name)
    return _objects_table(items, name, "jsonl")


def _json_table(value: Any, text: str, name: str, decoder: json.JSONDecoder,
                max_rows: int | None) -> Table:
    start = len(text) - len(text.lstrip())
    if isinstance(value, dict):
        lists = [k for k, v in value.items()
                 if isinstance(v, list) and v and isinstance(v[0], dict)]
        if lists == ["messages"] or not lists:  # a single object: one row
            return _objects_table([(text.count("\n", 0, start) + 1, value)], name, "json")
        key = "data" if "data" in lists else lists[0] if len(lists) == 1 else None
        if key is None:
            raise DataError(f"{name}: several lists ({format_list(lists)}); expected a list of "
                            "objects, or one under \"data\"")
        value, start = value[key], _member_start(text, start, key, decoder)
    if not isinstance(value, list):
        raise DataError(f"{name}: expected a list of objects, found a JSON {type(value).__name__}")
    _check_rows(len(value), max_rows, name)
    lines = _element_lines(text, start, decoder)
    if len(set(lines)) < len(lines):  # objects share lines: number them by position instead
        lines = list(range(1, len(lines) + 1))
    return _objects_table(list(zip(lines, value)), name, "json")


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _element_lines(text: str, i: int, decoder: json.JSONDecoder) -> list[int]:
    """File lines on which the elements of the (valid) JSON array at text[i] == '[' begin."""
    lines, line, pos = [], 1, 0
    i = _skip_ws(text, i + 1)
    while text[i] != "]":
        line, pos = line + text.count("\n", pos, i), i
        lines.append(line)
        i = _skip_ws(text, decoder.raw_decode(text, i)[1])
        if text[i] == ",":
            i = _skip_ws(text, i + 1)
    return lines


def _member_start(text: str, i: int, key: str, decoder: json.JSONDecoder) -> int:
    """Offset of the value of `key` in the (valid) JSON object at text[i] == '{'."""
    found, i = -1, _skip_ws(text, i + 1)
    while text[i] != "}":
        member, i = decoder.raw_decode(text, i)
        i = _skip_ws(text, _skip_ws(text, i) + 1)  # past the ':'
        if member == key:
            found = i
        i = _skip_ws(text, decoder.raw_decode(text, i)[1])
        if text[i] == ",":
            i = _skip_ws(text, i + 1)
    return found


def _objects_table(items: list[tuple[int, Any]], name: str, fmt: str) -> Table:
    bad = [n for n, obj in items if not isinstance(obj, dict)]
    if bad:
        raise DataError(f"{name}: {format_rows(bad)} {'is' if len(bad) == 1 else 'are'} not a "
                        "JSON object ({\"column\": value, ...})")
    columns = list(dict.fromkeys(k for _, obj in items for k in obj))
    rows = [{c: obj.get(c) for c in columns} for _, obj in items]
    return Table(columns, rows, name, [n for n, _ in items], fmt)


# -- uploads: checked in a child process ---------------------------------------------------

#: The most rows an uploaded data set may have (reading stops after that many).
UPLOAD_MAX_ROWS = 200_000
#: The most bytes a check's answer (report + columns) may have: what is stored and shown.
UPLOAD_MAX_ANSWER = 256 * 1024
_LINE_LIMIT = 500  # characters of one problem or warning line


def upload_refusal(name: str, problems: list[str], task: str = "classify",
                   n: int = 0) -> dict[str, Any]:
    """A report (the `ValidationReport.to_json()` shape) for a file that can't be used."""
    return {"source": name, "task": task, "n": n, "usable": 0, "ok": False,
            "label_counts": {}, "problems": problems, "warnings": []}


def check_upload(data: bytes, name: str, *,
                 max_rows: int | None = UPLOAD_MAX_ROWS) -> tuple[dict[str, Any], list[str]]:
    """Validate an uploaded data file: its report (`ValidationReport.to_json()`, with row lists
    cut to their first few) and its columns. Tried as classification data first, or as
    dialogue first when its columns look like dialogue."""
    from engine.data import (
        DIALOGUE_PAIRS,
        load_classification,
        load_dialogue,
        validate_classification,
        validate_dialogue,
    )

    try:
        table = read_table(data, filename=name, max_rows=max_rows)
    except DataError as error:
        return upload_refusal(name, [str(error)]), []
    names = {c.strip().lower() for c in table.columns}
    dialogue = "messages" in names or any(set(pair) <= names for pair in DIALOGUE_PAIRS)
    order = ("chat", "classify") if dialogue else ("classify", "chat")
    first_error = ""
    for task in order:
        try:
            if task == "classify":
                report = validate_classification(load_classification(table))
            else:
                report = validate_dialogue(load_dialogue(table))
        except DataError as error:
            first_error = first_error or str(error)
            continue
        return report.to_json(), list(table.columns)
    return upload_refusal(name, [first_error], order[0], len(table.rows)), list(table.columns)


def _short(line: str) -> str:
    return line if len(line) <= _LINE_LIMIT else line[:_LINE_LIMIT - 1] + "…"


def upload_answer(data: bytes, name: str, *, max_rows: int | None = UPLOAD_MAX_ROWS) -> str:
    """`check_upload` as the JSON a child process prints: {"report": ..., "columns": [...]},
    lines cut to 500 characters, at most `UPLOAD_MAX_ANSWER` bytes."""
    try:
        report, columns = check_upload(data, name, max_rows=max_rows)
    except MemoryError:
        why = f"{name} needs too much memory to check; upload fewer or shorter rows"
        report, columns = upload_refusal(name, [why]), []
    for key in ("problems", "warnings"):
        report[key] = [_short(str(line)) for line in report.get(key) or []]
    answer = json.dumps({"report": report, "columns": columns})
    if len(answer.encode()) > UPLOAD_MAX_ANSWER:
        why = (f"{name}: its report would be over {UPLOAD_MAX_ANSWER // 1024} KB (too many or "
               "too long column names or labels)")
        report = upload_refusal(name, [why], report.get("task", "classify"), report.get("n", 0))
        answer = json.dumps({"report": report, "columns": []})
    return answer


def upload_main() -> None:
    """The child process's entry: a JSON request on stdin ({"path", "name", "max_rows",
    "memory_bytes"}), the answer on stdout. Runs niced, with its address space limited."""
    request = json.loads(sys.stdin.read())
    try:
        import resource

        limit = int(request.get("memory_bytes") or 0)
        if limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.nice(10)
    except (ImportError, OSError, ValueError):
        pass
    with open(request["path"], "rb") as f:
        data = f.read()
    sys.stdout.write(upload_answer(data, str(request["name"]), max_rows=request.get("max_rows")))
    sys.stdout.flush()
