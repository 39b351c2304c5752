"""engine.data / engine.data_validation: reading files, detecting columns, loading, validating,
splitting and checking labels. Tiny files are written to tmp_path; BANKING77 is the real one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from engine.data import (
    Columns,
    DataReportError,
    DialogueSet,
    LabeledSet,
    Table,
    check_labels,
    detect_columns,
    load_classification,
    load_dialogue,
    load_texts,
    read_table,
    stratified_split,
    validate_classification,
    validate_dialogue,
)
from engine.errors import DataError, LabelMismatchError

REPO = Path(__file__).resolve().parents[2]
BANKING77 = REPO.parent / "shared" / "data" / "banking77"
needs_banking77 = pytest.mark.skipif(
    not (BANKING77 / "train.csv").exists(),
    reason="needs the full BANKING77 copy in ../shared/data/banking77 beside the repo (not part "
           "of a clone; examples/banking77 is only a slice)",
)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def table(columns: list[str], name: str = "data.csv") -> Table:
    return Table(columns, [{c: "x" for c in columns}], name)


# --- the module stays light -------------------------------------------------------------------


def test_importing_engine_data_imports_no_heavy_library() -> None:
    code = (
        "import engine.data, engine.data_validation, sys; "
        "heavy = [m for m in ('torch', 'transformers', 'pandas', 'numpy') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# --- read_table: formats ----------------------------------------------------------------------


def test_csv_with_quoted_commas_newlines_and_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "data.csv",
                 'text,label\n"hello, world",greet\n\n"two\nlines",multi\n"say ""hi""",quote\n')
    t = read_table(path)
    assert t.format == "csv" and t.columns == ["text", "label"]
    assert [r["text"] for r in t.rows] == ["hello, world", "two\nlines", 'say "hi"']
    assert t.row_numbers == [2, 4, 6]  # header is line 1; blank line 3; row 4 spans lines 4-5
    assert t.source == str(path)


def test_csv_with_bom_and_crlf(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.csv", b"\xef\xbb\xbftext,label\r\nhi,a\r\n")
    t = read_table(path)
    assert t.columns == ["text", "label"]
    assert t.rows == [{"text": "hi", "label": "a"}]


def test_csv_short_rows_are_padded_and_semicolons_detected(tmp_path: Path) -> None:
    assert read_table(write(tmp_path, "a.csv", "text,label\nhi\n")).rows == [
        {"text": "hi", "label": ""}
    ]
    t = read_table(write(tmp_path, "b.csv", "text;label\nhi, there;a\n"))
    assert t.rows == [{"text": "hi, there", "label": "a"}]


def test_tsv_quoted_and_plain(tmp_path: Path) -> None:
    t = read_table(write(tmp_path, "a.tsv", 'text\tlabel\n"tab\tinside"\tx\nplain\ty\n'))
    assert t.format == "tsv" and [r["text"] for r in t.rows] == ["tab\tinside", "plain"]
    # a stray quote in a TSV is just a character (plain TSV has no quoting)
    t = read_table(write(tmp_path, "b.tsv", 'text\tlabel\n"unclosed\tx\nok\ty\n'))
    assert [r["text"] for r in t.rows] == ['"unclosed', "ok"]


def test_jsonl_rows_and_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "data.jsonl",
                 '{"text": "a", "label": 1}\n\n{"text": "b", "label": "y", "extra": [1]}\n')
    t = read_table(path)
    assert t.format == "jsonl" and t.columns == ["text", "label", "extra"]
    assert t.row_numbers == [1, 3]
    assert t.rows[0] == {"text": "a", "label": 1, "extra": None}


def test_json_list_and_data_wrapper(tmp_path: Path) -> None:
    pretty = '[\n  {"text": "a",\n   "label": "x"},\n  {"text": "b", "label": "y"}\n]\n'
    t = read_table(write(tmp_path, "list.json", pretty))
    assert t.format == "json" and t.row_numbers == [2, 4] and t.rows[1]["label"] == "y"
    wrapped = '{"name": "demo", "data": [\n {"text": "a"},\n\n {"text": "b"}\n]}'
    t = read_table(write(tmp_path, "wrapped.json", wrapped))
    assert [r["text"] for r in t.rows] == ["a", "b"] and t.row_numbers == [2, 4]
    # one-line JSON: objects are numbered by position
    t = read_table(write(tmp_path, "line.json", json.dumps([{"text": "a"}, {"text": "b"}])))
    assert t.row_numbers == [1, 2]


def test_json_file_holding_jsonl_and_sniffing_without_extension(tmp_path: Path) -> None:
    lines = '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n'
    assert read_table(write(tmp_path, "really.json", lines)).format == "jsonl"
    assert read_table(lines.encode()).format == "jsonl"
    assert read_table(b'[{"text": "a"}]').format == "json"
    assert read_table(b"text\tlabel\nhi\tx\n").format == "tsv"
    assert read_table(b"text,label\nhi,x\n", filename="up.bin").format == "csv"


def test_txt_is_one_text_per_line(tmp_path: Path) -> None:
    t = read_table(write(tmp_path, "texts.txt", "first\nsecond\n\nthird\n"))
    assert t.columns == ["text"] and t.row_numbers == [1, 2, 4]
    assert read_table(write(tmp_path, "t.txt", "text\tlabel\nhi\tx\n")).format == "tsv"


# --- read_table: errors -----------------------------------------------------------------------


def test_non_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "file.csv", "text,label\nok,a\ncafé,b\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"file\.csv is not UTF-8 text \(line 3"):
        read_table(path)
    with pytest.raises(DataError, match=r"upload\.csv is not UTF-8 text \(line 1"):
        read_table("é".encode("latin-1"), filename="upload.csv")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"  \n\n", "is empty"),
        (b"\xef\xbb\xbf", "is empty"),
        (b"text,label\n", "no data rows"),
        (b"\xff\xfet\x00e\x00", "UTF-16"),
        (b"text\x00,label\n", "NUL byte"),
        (b"PK\x03\x04rest", "zip or spreadsheet"),
        (b"[]", "no data rows"),
    ],
)
def test_unusable_files(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_table(write(tmp_path, "data.csv", content))


def test_missing_and_unreadable_paths(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=re.escape(f"can't read {missing}: ")):
        read_table(missing)
    with pytest.raises(DataError, match=re.escape(f"can't read {tmp_path}: ")):
        read_table(tmp_path)
    with pytest.raises(DataError, match="spreadsheet"):
        read_table(b"whatever", filename="book.xlsx")


def test_malformed_jsonl_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.jsonl", '{"text": "a"}\n\n{"text": "b" "label": 1}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl: row 3 is not valid JSON"):
        read_table(path)
    with pytest.raises(DataError, match=r"row 2 is not a JSON object"):
        read_table(write(tmp_path, "arr.jsonl", '{"text": "a"}\n[1, 2]\n'))


def test_malformed_json(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not valid JSON: .*line 3"):
        read_table(write(tmp_path, "a.json", '[\n{"text": "a"},\n{"text" "b"}\n]'))
    with pytest.raises(DataError, match="several lists"):
        read_table(write(tmp_path, "b.json", '{"train": [{"a": 1}], "test": [{"a": 2}]}'))
    with pytest.raises(DataError, match="expected a list of objects"):
        read_table(write(tmp_path, "c.json", '"just a string"'))


def test_malformed_csv(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"row 3 is malformed \(a quote is never closed\)"):
        read_table(write(tmp_path, "q.csv", 'text,label\nok,a\n"open,b\nmore,c\n'))
    with pytest.raises(DataError, match=r"rows 3, 4 have more values than the 2 columns"):
        read_table(write(tmp_path, "w.csv", "text,label\nok,a\nhi, there,b\nx,y,z\n"))
    with pytest.raises(DataError, match="the header names text more than once"):
        read_table(write(tmp_path, "d.csv", "text,text\na,b\n"))


def test_table_validates_itself() -> None:
    with pytest.raises(ValueError, match="unique"):
        Table(["a", "a"], [], "x")
    with pytest.raises(ValueError, match="row_numbers"):
        Table(["a"], [{"a": 1}], "x", [1, 2])
    with pytest.raises(ValueError, match="'xml'"):
        Table(["a"], [{"a": 1}], "x", format="xml")
    assert Table(["a"], [{"a": 1}, {"a": 2}], "x").row_numbers == [1, 2]


# --- detect_columns ---------------------------------------------------------------------------


def test_detects_case_insensitively_and_text_wins() -> None:
    assert detect_columns(table(["id", "Sentence", "Intent"])) == Columns(
        "classify", text="Sentence", label="Intent"
    )
    cols = detect_columns(table(["question", "text", "label", "category"]))
    assert (cols.text, cols.label) == ("text", "label")
    assert detect_columns(table(["prompt", "label"])).text == "prompt"
    assert detect_columns(table(["prompt", "query", "label"])).text == "query"


def test_single_column_is_the_text() -> None:
    assert detect_columns(table(["whatever"]), require_label=False).text == "whatever"
    with pytest.raises(DataError, match="no label column among: whatever"):
        detect_columns(table(["whatever"]))


def test_no_text_column_says_what_it_saw_and_how_to_name_it() -> None:
    with pytest.raises(DataError) as err:
        detect_columns(table(["a", "b", "c"]))
    assert str(err.value) == (
        "data.csv: no text column among: a, b, c; name it 'text' (or sentence, utterance, "
        "question, ...) and the label column 'label' (or category, intent, sentiment, ...)"
    )
    only_text = r"no text column among: a, b; name it 'text' \(or [^)]*\)$"
    with pytest.raises(DataError, match=only_text):
        detect_columns(table(["a", "b"]), require_label=False)


def test_ambiguous_columns() -> None:
    with pytest.raises(DataError, match="several possible text columns: question, review; name"):
        detect_columns(table(["question", "review", "label"]))
    with pytest.raises(DataError, match="several possible label columns: category, intent"):
        detect_columns(table(["text", "category", "intent"]))
    with pytest.raises(DataError, match=r"no label column among: text, score; name the label"):
        detect_columns(table(["text", "score"]))


def test_explicit_columns() -> None:
    t = table(["body", "y", "label"])
    assert detect_columns(t, text_column="body", label_column="Y") == Columns(
        "classify", text="body", label="y"
    )
    with pytest.raises(DataError, match=r"data.csv has no column 'nope' \(columns: body, y, "):
        detect_columns(t, text_column="nope")
    with pytest.raises(DataError, match="both the text and the label"):
        detect_columns(t, text_column="y", label_column="y")
    with pytest.raises(ValueError, match="'summarise'"):
        detect_columns(t, task="summarise")
    with pytest.raises(ValueError, match="for task 'classify'"):
        detect_columns(t, task="chat", text_column="body")
    assert detect_columns(Table(["Y", "y", "text"], [{}], "d.csv"), label_column="y").label == "y"


@pytest.mark.parametrize(
    ("columns", "prompt", "response"),
    [
        (["prompt", "response"], "prompt", "response"),
        (["Input", "Output", "id"], "Input", "Output"),
        (["question", "answer"], "question", "answer"),
        (["instruction", "response"], "instruction", "response"),
    ],
)
def test_dialogue_column_pairs(columns: list[str], prompt: str, response: str) -> None:
    cols = detect_columns(table(columns), task="chat")
    assert (cols.prompt, cols.response, cols.messages) == (prompt, response, None)


def test_dialogue_detection_errors_and_messages_column() -> None:
    assert detect_columns(table(["id", "messages"]), task="dialogue").messages == "messages"
    with pytest.raises(DataError, match=r"no dialogue columns among: a, b; name them 'prompt' and "
                                        r"'response' \(or .*input/output"):
        detect_columns(table(["a", "b"]), task="chat")
    with pytest.raises(DataError, match="several possible dialogue column pairs"):
        detect_columns(table(["prompt", "response", "question", "answer"]), task="chat")


def test_columns_validate_themselves() -> None:
    with pytest.raises(ValueError, match="'regress'"):
        Columns("regress", text="t")
    with pytest.raises(ValueError, match="text column"):
        Columns("classify")
    with pytest.raises(ValueError, match="messages column or prompt and response"):
        Columns("chat", prompt="p")


# --- loading ----------------------------------------------------------------------------------


def test_load_texts_reports_empty_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "id,text\n1,hello\n2,\n3,  \n4,bye\n")
    texts = load_texts(path)
    assert texts.texts == ["hello", "bye"] and texts.rows == [2, 5]
    assert texts.empty_rows == [3, 4] and texts.column == "text" and len(texts) == 2
    assert load_texts(b"body\nhi\n", filename="up.csv").texts == ["hi"]
    with pytest.raises(DataError, match="every text in column 'text' is empty"):
        load_texts(write(tmp_path, "empty.csv", "id,text\n1,\n"))
    with pytest.raises(DataError, match="row 1: 'text' is a list"):
        load_texts(write(tmp_path, "l.jsonl", '{"text": ["a"]}\n'))


def test_load_classification(tmp_path: Path) -> None:
    path = write(tmp_path, "c.jsonl", '{"text": " a ", "label": 1}\n{"text": "b", "label": null}\n')
    data = load_classification(path)
    assert data.texts == ["a", "b"] and data.labels == ["1", ""] and data.rows == [1, 2]
    assert (data.text_column, data.label_column, data.label_names) == ("text", "label", ["", "1"])
    with pytest.raises(DataError, match=r"row 2: 'label' is a list or object \(one label per"):
        load_classification(write(tmp_path, "m.jsonl", '{"text": "a", "label": "x"}\n'
                                                        '{"text": "b", "label": ["x", "y"]}\n'))
    with pytest.raises(DataError, match=r"row 3 longer than 5 characters \(the longest has 11\)"):
        load_classification(write(tmp_path, "long.csv", "text,label\nshort,a\nmuch longer,b\n"),
                            max_chars=5)
    with pytest.raises(ValueError, match="max_chars"):
        load_classification(path, max_chars=0)
    with pytest.raises(ValueError, match="must match"):
        LabeledSet(["a"], [], [1])


def test_load_dialogue_from_messages(tmp_path: Path) -> None:
    rows = [
        {"messages": [{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": "Hello"}]},
        {"messages": [{"role": "user", "content": "Bye"},
                      {"role": "assistant", "content": "Bye!"}]},
    ]
    path = write(tmp_path, "chat.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    data = load_dialogue(path)
    assert len(data) == 2 and data.rows == [1, 2]
    assert data.conversations[0][0] == {"role": "system", "content": "Be brief."}


def test_load_dialogue_from_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "pairs.csv", "system,prompt,response\nBe kind.,Hi,Hello\n,Q,A\n")
    data = load_dialogue(path)
    assert data.conversations == [
        [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
         {"role": "assistant", "content": "Hello"}],
        [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
    ]


def test_load_dialogue_bad_rows(tmp_path: Path) -> None:
    lines = [
        {"messages": [{"role": "user", "content": "ok"}, {"role": "assistant", "content": "ok"}]},
        {"messages": [{"role": "bot", "content": "hi"}]},
        {"messages": "hello"},
        {"messages": [{"role": "user"}]},
    ]
    path = write(tmp_path, "bad.jsonl", "".join(json.dumps(r) + "\n" for r in lines))
    with pytest.raises(DataError) as err:
        load_dialogue(path)
    message = str(err.value)
    assert "row 2: message 1 has role 'bot' (roles: system, user, assistant)" in message
    assert "row 3: 'messages' is not a list of messages" in message
    assert 'row 4: message 1 has no text "content"' in message
    assert "row 1" not in message


# --- validation -------------------------------------------------------------------------------


def labeled(pairs: list[tuple[str, str]]) -> LabeledSet:
    return LabeledSet([t for t, _ in pairs], [lab for _, lab in pairs],
                      list(range(2, len(pairs) + 2)), "data.csv")


def test_valid_classification_report() -> None:
    report = validate_classification(labeled([("a", "x"), ("b", "x"), ("c", "y"), ("d", "y")]))
    assert report.ok and report.problems == [] and report.warnings == []
    assert report.n == 4 and report.usable == 4 and report.label_counts == {"x": 2, "y": 2}
    report.raise_if_bad()
    assert report.to_text().startswith("data.csv: 4 rows, 4 usable, 2 labels (usable)")


def test_duplicates_conflicts_empty_and_long_rows() -> None:
    data = labeled([
        ("hello", "x"),       # row 2
        ("hello ", "x"),      # row 3: duplicate of row 2
        ("bye", "y"),         # row 4
        ("bye", "x"),         # row 5: conflicts with row 4
        ("", "y"),            # row 6: empty text
        ("no label", ""),     # row 7: empty label
        ("z" * 41, "y"),      # row 8: long with max_tokens_hint=10
        ("hello", "x"),       # row 9: duplicate of row 2
    ])
    report = validate_classification(data, max_tokens_hint=10)
    assert report.duplicate_rows == [(3, 2), (9, 2)]
    assert report.conflicting_rows == [[4, 5]]
    assert report.empty_rows == [6, 7]
    assert report.long_rows == [8] and report.max_chars == 40
    assert report.dropped_rows == [3, 6, 7, 9]
    assert report.label_counts == {"x": 2, "y": 2} and report.ok
    text = report.to_text()
    assert "2 duplicate rows, skipped: rows 3 (same as 2), 9 (same as 2)" in text
    assert "2 empty rows (no text or no label), skipped: rows 6, 7" in text
    assert "1 text with conflicting labels (same text, different labels), kept: rows (4, 5)" in text
    assert "1 row longer than 40 characters (will be truncated): row 8" in text
    as_json = report.to_json()
    assert json.loads(json.dumps(as_json)) == as_json
    assert as_json["duplicate_rows"][0] == {"row": 3, "same_as": 2} and as_json["ok"] is True
    assert data.without_rows(report.dropped_rows).rows == [2, 4, 5, 8]


def test_refusals() -> None:
    one = validate_classification(labeled([("a", "spam"), ("b", "spam")]))
    assert not one.ok
    assert one.problems == ["only one label ('spam', 2 rows); a classifier needs at least two"]
    small = validate_classification(labeled([("a", "x"), ("b", "x"), ("c", "y"), ("d", "z")]))
    assert small.problems == [
        "2 labels with fewer than 2 rows: 'y' (1), 'z' (1); add examples or remove these labels"
    ]
    empty = validate_classification(labeled([("", "x"), ("a", "")]))
    assert empty.problems == ["no usable rows: every row has an empty text or label"]
    with pytest.raises(DataReportError) as err:
        small.raise_if_bad()
    assert isinstance(err.value, DataError) and err.value.report is small
    assert "(refused)" in str(err.value) and "'y' (1)" in str(err.value)
    dup = validate_classification(labeled([("a", "x"), ("a", "x"), ("b", "y"), ("c", "y")]))
    assert "1 duplicate row, skipped: row 3 (same as 2)" in dup.to_text()
    with pytest.raises(ValueError, match="min_per_class"):
        validate_classification(labeled([("a", "x")]), min_per_class=0)


def test_report_text_truncates_long_lists() -> None:
    data = labeled([("", "x")] * 25 + [("a", "x"), ("b", "x"), ("c", "y"), ("d", "y")])
    text = validate_classification(data).to_text()
    assert "25 empty rows (no text or no label), skipped: rows 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 " \
           "and 15 more" in text


def test_validate_dialogue() -> None:
    def conv(*turns: tuple[str, str]) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in turns]

    data = DialogueSet(
        [conv(("user", "hi"), ("assistant", "hello")),
         conv(("user", "hi"), ("assistant", "hello")),
         conv(("user", "only a question")),
         conv(("user", ""), ("assistant", "x")),
         conv(("user", "long"), ("assistant", "y" * 50))],
        [1, 2, 3, 4, 5], "chat.jsonl",
    )
    report = validate_dialogue(data, max_tokens_hint=10)
    assert report.ok and report.task == "chat"
    assert report.duplicate_rows == [(2, 1)] and report.empty_rows == [4]
    assert report.unusable_rows == {3: "the last message is not from the assistant"}
    assert report.long_rows == [5] and report.dropped_rows == [2, 3, 4]
    assert "1 row skipped, the last message is not from the assistant: row 3" in report.to_text()
    refused = validate_dialogue(DialogueSet([conv(("user", "q"))], [1], "c.jsonl"))
    assert refused.problems == ["no usable conversations"]


# --- splitting --------------------------------------------------------------------------------


def test_split_is_deterministic_disjoint_and_keeps_order() -> None:
    data = labeled([(f"t{i}", "xyz"[i % 3]) for i in range(60)])
    train, val = stratified_split(data, validation_fraction=0.2, seed=7)
    again = stratified_split(data, validation_fraction=0.2, seed=7)
    assert (train.rows, val.rows) == (again[0].rows, again[1].rows)
    assert stratified_split(data, validation_fraction=0.2, seed=8)[1].rows != val.rows
    assert sorted(train.rows + val.rows) == data.rows and not set(train.rows) & set(val.rows)
    assert train.rows == sorted(train.rows) and val.rows == sorted(val.rows)
    assert Counter(val.labels) == {"x": 4, "y": 4, "z": 4}


def test_split_small_classes_stay_in_train() -> None:
    data = labeled([("a", "one")] + [(f"b{i}", "two") for i in range(2)]
                   + [(f"c{i}", "many") for i in range(10)])
    for seed in range(20):
        train, val = stratified_split(data, validation_fraction=0.5, seed=seed)
        assert "one" in train.labels and "one" not in val.labels
        assert Counter(train.labels)["two"] >= 1 and Counter(val.labels)["many"] == 5


def test_split_dialogue_and_bad_fraction() -> None:
    data = DialogueSet([[{"role": "user", "content": str(i)}] for i in range(10)],
                       list(range(1, 11)), "c.jsonl")
    train, val = stratified_split(data, validation_fraction=0.3, seed=1)
    assert (len(train), len(val)) == (7, 3) and sorted(train.rows + val.rows) == data.rows
    assert stratified_split(data, validation_fraction=0.3, seed=1)[1].rows == val.rows
    single = DialogueSet([[{"role": "user", "content": "x"}]], [1])
    assert [len(s) for s in stratified_split(single)] == [1, 0]
    for bad in (0, 1, -0.1, 1.5):
        with pytest.raises(ValueError, match="validation_fraction"):
            stratified_split(data, validation_fraction=bad)


# --- labels -----------------------------------------------------------------------------------


def test_check_labels() -> None:
    check_labels(["a", "b", "a"], ["a", "b", "c"])
    with pytest.raises(LabelMismatchError) as err:
        check_labels(["a", "y", "x", "y"], ["a", "b", "c"])
    assert isinstance(err.value, DataError)
    assert str(err.value) == (
        "labels in the data that the model doesn't know: y, x (the model knows: a, b, c)"
    )


# --- BANKING77 --------------------------------------------------------------------------------


@needs_banking77
def test_banking77_loads_detects_and_splits() -> None:
    t = read_table(BANKING77 / "train.csv")
    assert detect_columns(t) == Columns("classify", text="text", label="category")
    data = load_classification(t)
    assert len(data) == 10003 and len(data.label_names) == 77
    assert data.rows[:2] == [2, 3] and data.rows[-1] > 10003  # multi-line quoted texts
    report = validate_classification(data)
    assert report.ok and len(report.label_counts) == 77
    train, val = stratified_split(data, validation_fraction=0.1, seed=0)
    assert len(val) == 1000 and len(train) == 9003
    totals, in_val = Counter(data.labels), Counter(val.labels)
    assert set(train.labels) == set(totals)
    for label, n in totals.items():
        assert abs(in_val[label] - n * 0.1) <= 1, label
    test = load_classification(BANKING77 / "test.csv")
    assert len(test) == 3080
    check_labels(test.labels, data.label_names)
    texts = load_texts(BANKING77 / "test.csv")
    assert len(texts) == 3080 and texts.empty_rows == []
