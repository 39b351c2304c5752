"""Small helpers shared by the repository modules."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from storage.db import begin_immediate
from storage.errors import Conflict

RowT = TypeVar("RowT", bound=SQLModel)
P = ParamSpec("P")
R = TypeVar("R")


def insert_row(session: Session, row: RowT, *, conflict: str) -> RowT:
    """Add `row` and commit; a unique-constraint clash rolls back and raises `Conflict`."""
    begin_immediate(session)
    session.add(row)
    try:
        session.commit()
    except sa.exc.IntegrityError as exc:
        session.rollback()
        raise Conflict(conflict) from exc
    session.refresh(row)
    return row


def fresh(query):
    """The query, reloading rows the session holds already: sessions keep objects after a
    commit (`expire_on_commit=False`), so a getter must not hand back a stale copy."""
    return query.execution_options(populate_existing=True)


def as_id(ref: int | str) -> int | None:
    """`ref` as a row id when it looks like one (`12`, `"12"`), else None."""
    if isinstance(ref, int):
        return ref
    return int(ref) if ref.isdigit() else None


def read_only(fn: Callable[P, R]) -> Callable[P, R]:
    """A repository read that opened the session's transaction ends it (a commit of nothing),
    so a long-lived session never keeps an old SQLite snapshot and sees other processes'
    changes on its next call. A transaction the caller had open is left alone."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        session: Session = kwargs["session"]  # type: ignore[assignment]
        opened = not session.in_transaction()
        result = fn(*args, **kwargs)
        if opened and session.in_transaction():
            session.commit()
        return result

    return wrapper
