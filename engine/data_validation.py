"""Before training: check a loaded data set and explain, row by row, what is wrong with it;
split it into train and validation; check its labels against a model's.

`validate_classification` and `validate_dialogue` return a `ValidationReport`: refusals go to
`problems` (the report is then not `ok`), rows that training skips (empty, repeated, unusable)
go to `dropped_rows` with a line in `warnings`. Train on
`dataset.without_rows(report.dropped_rows)`.

Row numbers are the line in the file where the row starts (see `engine.data`). Like
`engine.data`, this module imports only the standard library.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from engine.errors import DataError, LabelMismatchError

if TYPE_CHECKING:
    from engine.data import DialogueSet, LabeledSet

#: Rough characters per token, to turn a token budget into a character limit.
CHARS_PER_TOKEN = 4
#: Token budget assumed when no `max_tokens_hint` is given (a typical encoder's maximum).
DEFAULT_MAX_TOKENS = 512
#: How many row numbers or labels a message lists before "and N more".
LIST_LIMIT = 10

TASKS = ("classify", "chat")


def format_rows(rows: Sequence[int], limit: int = LIST_LIMIT) -> str:
    """'row 3', 'rows 3, 5, 9' or 'rows 3, 5, ... and 12 more' (row numbers as given)."""
    if not rows:
        return "no rows"
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"{'row' if len(rows) == 1 else 'rows'} {shown}{more}"


def format_list(items: Sequence[str], limit: int = LIST_LIMIT) -> str:
    """'a, b, c' or 'a, b, ... and 5 more'."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class DataReportError(DataError):
    """A data set refused by validation; `report` is the full `ValidationReport`."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.to_text())
        self.report = report


@dataclass
class ValidationReport:
    """What validation found in a data set.

    `n` counts all rows read; `label_counts` counts the usable ones per label (classification).
    `duplicate_rows` pairs (repeated row, the earlier row it repeats); `conflicting_rows` groups
    rows with the same text but different labels; `long_rows` are longer than `max_chars`.
    """

    source: str
    task: str
    n: int
    max_chars: int
    label_counts: dict[str, int] = field(default_factory=dict)
    empty_rows: list[int] = field(default_factory=list)
    duplicate_rows: list[tuple[int, int]] = field(default_factory=list)
    conflicting_rows: list[list[int]] = field(default_factory=list)
    long_rows: list[int] = field(default_factory=list)
    unusable_rows: dict[int, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")
        if self.n < 0:
            raise ValueError(f"n must be >= 0, not {self.n!r}")
        if self.max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, not {self.max_chars!r}")

    @property
    def ok(self) -> bool:
        """True when nothing refuses the data set (warnings don't)."""
        return not self.problems

    @property
    def dropped_rows(self) -> list[int]:
        """Rows that training skips: empty, repeated or otherwise unusable."""
        dropped = set(self.empty_rows) | {r for r, _ in self.duplicate_rows}
        return sorted(dropped | set(self.unusable_rows))

    @property
    def usable(self) -> int:
        """How many rows training would use."""
        return self.n - len(self.dropped_rows)

    def raise_if_bad(self) -> None:
        """Raise `DataReportError` (a `DataError`) with `to_text()` when the report is not ok."""
        if not self.ok:
            raise DataReportError(self)

    def to_text(self) -> str:
        """A human-readable report: a summary line, then problems, warnings and labels."""
        verdict = "usable" if self.ok else "refused"
        summary = f"{self.source}: {_plural(self.n, 'row')}, {self.usable} usable"
        if self.task == "classify":
            summary += f", {_plural(len(self.label_counts), 'label')}"
        lines = [f"{summary} ({verdict})"]
        if self.problems:
            lines.append("Problems:")
            lines += [f"- {p}" for p in self.problems]
        if self.warnings:
            lines.append("Warnings:")
            lines += [f"- {w}" for w in self.warnings]
        if self.label_counts:
            counts = [f"{label} {count}" for label, count in self.label_counts.items()]
            lines.append(f"Labels: {format_list(counts)}")
        return "\n".join(lines)

    def to_json(self, limit: int | None = LIST_LIMIT) -> dict[str, Any]:
        """The report as a JSON-serialisable dict. Each list of rows holds its first `limit`
        entries (all of them with `limit=None`); `counts` has their full lengths, so a report
        stays small however many rows repeat."""
        def cut(items: Sequence[Any]) -> list[Any]:
            return list(items if limit is None else items[:limit])

        unusable = list(self.unusable_rows.items())
        return {
            "source": self.source,
            "task": self.task,
            "n": self.n,
            "usable": self.usable,
            "ok": self.ok,
            "max_chars": self.max_chars,
            "label_counts": dict(self.label_counts),
            "empty_rows": cut(self.empty_rows),
            "duplicate_rows": [{"row": r, "same_as": s} for r, s in cut(self.duplicate_rows)],
            "conflicting_rows": [cut(g) for g in cut(self.conflicting_rows)],
            "long_rows": cut(self.long_rows),
            "unusable_rows": {str(r): why for r, why in cut(unusable)},
            "dropped_rows": cut(self.dropped_rows),
            "counts": {"empty_rows": len(self.empty_rows),
                       "duplicate_rows": len(self.duplicate_rows),
                       "conflicting_rows": len(self.conflicting_rows),
                       "long_rows": len(self.long_rows),
                       "unusable_rows": len(self.unusable_rows),
                       "dropped_rows": len(self.dropped_rows)},
            "problems": list(self.problems),
            "warnings": list(self.warnings),
        }


def _max_chars(max_tokens_hint: int | None) -> int:
    if max_tokens_hint is not None and max_tokens_hint < 1:
        raise ValueError(f"max_tokens_hint must be >= 1, not {max_tokens_hint!r}")
    return CHARS_PER_TOKEN * (max_tokens_hint or DEFAULT_MAX_TOKENS)


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _common_warnings(report: ValidationReport, what: str) -> None:
    if report.empty_rows:
        report.warnings.append(
            f"{_plural(len(report.empty_rows), 'empty row')} ({what}), skipped: "
            f"{format_rows(report.empty_rows)}"
        )
    if report.duplicate_rows:
        n = len(report.duplicate_rows)
        pairs = [f"{r} (same as {s})" for r, s in report.duplicate_rows[:LIST_LIMIT]]
        more = f" and {n - LIST_LIMIT} more" if n > LIST_LIMIT else ""
        report.warnings.append(
            f"{_plural(n, 'duplicate row')}, skipped: "
            f"{'row' if n == 1 else 'rows'} {', '.join(pairs)}{more}"
        )
    if report.long_rows:
        report.warnings.append(
            f"{_plural(len(report.long_rows), 'row')} longer than {report.max_chars} characters "
            f"(will be truncated): {format_rows(report.long_rows)}"
        )


def validate_classification(
    dataset: LabeledSet, *, min_per_class: int = 2, max_tokens_hint: int | None = None
) -> ValidationReport:
    """Check a classification set: empty, repeated, conflicting and over-long rows, class sizes.

    Refuses (`ok` False) a set with no usable rows, only one label, or a label with fewer than
    `min_per_class` usable rows. Over-long means more than about `max_tokens_hint` tokens
    (4 characters a token; 512 tokens when not given).
    """
    if min_per_class < 1:
        raise ValueError(f"min_per_class must be >= 1, not {min_per_class!r}")
    report = ValidationReport(
        source=dataset.source, task="classify", n=len(dataset),
        max_chars=_max_chars(max_tokens_hint),
    )
    first_seen: dict[tuple[str, str], int] = {}
    labels_by_text: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    counts: Counter[str] = Counter()
    for text, label, row in zip(dataset.texts, dataset.labels, dataset.rows):
        if not text.strip() or not label.strip():
            report.empty_rows.append(row)
            continue
        if len(text) > report.max_chars:
            report.long_rows.append(row)
        key = _normalise(text)
        labels_by_text[key][label].append(row)
        if (key, label) in first_seen:
            report.duplicate_rows.append((row, first_seen[key, label]))
            continue
        first_seen[key, label] = row
        counts[label] += 1
    report.label_counts = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    for text, by_label in labels_by_text.items():
        if len(by_label) > 1:
            report.conflicting_rows.append(sorted(r for rows in by_label.values() for r in rows))

    _common_warnings(report, "no text or no label")
    if report.conflicting_rows:
        n = len(report.conflicting_rows)
        groups = ["(" + ", ".join(map(str, g[:LIST_LIMIT])) +
                  (f", ... {len(g) - LIST_LIMIT} more" if len(g) > LIST_LIMIT else "") + ")"
                  for g in report.conflicting_rows[:5]]
        more = f" and {n - 5} more" if n > 5 else ""
        report.warnings.append(
            f"{_plural(n, 'text')} with conflicting labels (same text, different "
            f"labels), kept: rows {', '.join(groups)}{more}"
        )

    if not counts:
        report.problems.append(
            "no usable rows: every row has an empty text or label" if report.n else "no rows"
        )
    elif len(counts) == 1:
        (label, count), = counts.items()
        report.problems.append(
            f"only one label ('{label}', {_plural(count, 'row')}); a classifier needs at least two"
        )
    small = [(label, c) for label, c in report.label_counts.items() if c < min_per_class]
    if counts and len(counts) > 1 and small:
        named = [f"'{label}' ({c})" for label, c in sorted(small, key=lambda kv: (kv[1], kv[0]))]
        report.problems.append(
            f"{_plural(len(small), 'label')} with fewer than {min_per_class} rows: "
            f"{format_list(named)}; add examples or remove these labels"
        )
    return report


def validate_dialogue(
    dataset: DialogueSet, *, max_tokens_hint: int | None = None
) -> ValidationReport:
    """Check a dialogue set for training: empty messages, repeats, length, the final turn.

    A conversation whose last message is not from the assistant has nothing to learn and is
    skipped; the set is refused when no usable conversation remains.
    """
    report = ValidationReport(
        source=dataset.source, task="chat", n=len(dataset), max_chars=_max_chars(max_tokens_hint)
    )
    first_seen: dict[tuple[tuple[str, str], ...], int] = {}
    for messages, row in zip(dataset.conversations, dataset.rows):
        if not messages or any(not m["content"].strip() for m in messages):
            report.empty_rows.append(row)
            continue
        if messages[-1]["role"] != "assistant":
            report.unusable_rows[row] = "the last message is not from the assistant"
            continue
        if sum(len(m["content"]) for m in messages) > report.max_chars:
            report.long_rows.append(row)
        key = tuple((m["role"], _normalise(m["content"])) for m in messages)
        if key in first_seen:
            report.duplicate_rows.append((row, first_seen[key]))
            continue
        first_seen[key] = row

    _common_warnings(report, "a message without content")
    by_reason: dict[str, list[int]] = defaultdict(list)
    for row, why in report.unusable_rows.items():
        by_reason[why].append(row)
    for why, rows in by_reason.items():
        report.warnings.append(f"{_plural(len(rows), 'row')} skipped, {why}: {format_rows(rows)}")
    if not report.usable:
        report.problems.append("no usable conversations" if report.n else "no rows")
    return report


@overload
def stratified_split(
    dataset: LabeledSet, *, validation_fraction: float = 0.1, seed: int = 0
) -> tuple[LabeledSet, LabeledSet]: ...


@overload
def stratified_split(
    dataset: DialogueSet, *, validation_fraction: float = 0.1, seed: int = 0
) -> tuple[DialogueSet, DialogueSet]: ...


def stratified_split(dataset: Any, *, validation_fraction: float = 0.1, seed: int = 0) -> Any:
    """Split into (train, validation), seeded and deterministic; rows keep their file order.

    A `LabeledSet` is stratified: each label contributes its share of the validation rows
    (largest remainders get the rounding), a label always keeps at least one row in train, and a
    label with one row stays in train. A `DialogueSet` is split at random, keeping at least one
    conversation in train.
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(
            f"validation_fraction must be between 0 and 1, not {validation_fraction!r}"
        )
    if not hasattr(dataset, "labels") and not hasattr(dataset, "conversations"):
        raise TypeError(f"can split a LabeledSet or a DialogueSet, not {type(dataset).__name__}")
    rng = random.Random(seed)
    if not hasattr(dataset, "labels"):
        order = list(range(len(dataset)))
        rng.shuffle(order)
        n_val = min(round(len(order) * validation_fraction), max(len(order) - 1, 0))
        return dataset.subset(sorted(order[n_val:])), dataset.subset(sorted(order[:n_val]))
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(dataset.labels):
        by_label[label].append(i)
    groups = [by_label[label] for label in sorted(by_label)]
    for group in groups:
        rng.shuffle(group)
    shares = [len(g) * validation_fraction if len(g) > 1 else 0.0 for g in groups]
    quota = [int(s) for s in shares]
    spare = round(sum(shares)) - sum(quota)
    by_remainder = sorted(range(len(groups)), key=lambda k: (-(shares[k] - quota[k]), k))
    for k in by_remainder:
        if spare <= 0:
            break
        if shares[k] > quota[k]:
            quota[k] += 1
            spare -= 1
    val: list[int] = []
    for group, q in zip(groups, quota):
        val += group[: min(q, len(group) - 1)]
    chosen = set(val)
    train = [i for i in range(len(dataset)) if i not in chosen]
    return dataset.subset(train), dataset.subset(sorted(val))


def check_labels(data_labels: Iterable[str], model_labels: Iterable[str]) -> None:
    """Raise `LabelMismatchError` when the data has labels the model doesn't know."""
    known = list(dict.fromkeys(model_labels))
    known_set = set(known)
    unknown = [label for label in dict.fromkeys(data_labels) if label not in known_set]
    if unknown:
        raise LabelMismatchError(
            f"labels in the data that the model doesn't know: {format_list(unknown)} "
            f"(the model knows: {format_list(known, limit=20)})"
        )
