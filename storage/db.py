"""Engines and sessions: SQLite (WAL, one file, the default) or PostgreSQL (many processes).

    engine = make_engine("sqlite:///.lmops/lmops.db")
    with session_scope(engine) as session:
        workspace = get_or_create_workspace(session=session, team_id="local", name="local")

Repository functions commit their own changes, as in full-stack-fastapi-template; the session
keeps loaded objects usable after a commit (`expire_on_commit=False`), so they may cross threads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from storage.errors import StorageError

SQLITE_BUSY_TIMEOUT_MS = 30_000
_BEGIN_OPTION = "lmops_sqlite_begin"


def make_engine(url: str | sa.URL, **kwargs: Any) -> sa.Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout, foreign keys and real BEGINs.

    On SQLite the driver's own transaction handling is switched off and every transaction
    starts with an explicit `BEGIN` (or `BEGIN IMMEDIATE`, see `begin_immediate`), so locks are
    taken when SQLAlchemy says so. The parent folder of a SQLite file is created if missing.
    """
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, **kwargs)
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10,
                               "pool_recycle": 1800}
    options.update(kwargs)
    return sa.create_engine(url, **options)


def _sqlite_engine(url: sa.URL, **kwargs: Any) -> sa.Engine:
    if sqlite3.sqlite_version_info < (3, 35):  # UPDATE ... RETURNING, used by the queue
        raise StorageError(f"SQLite {sqlite3.sqlite_version} is too old: lmops needs 3.35 or newer")
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    connect_args.update(kwargs.pop("connect_args", {}))
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable enough in WAL mode, much faster
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


def is_postgres(session_or_bind: Session | sa.Engine | sa.Connection) -> bool:
    """True when the session (or engine, or connection) talks to PostgreSQL."""
    bind = session_or_bind.get_bind() if isinstance(session_or_bind, Session) else session_or_bind
    return bind.dialect.name == "postgresql"


def begin_immediate(session: Session) -> None:
    """On SQLite, start the session's next transaction with `BEGIN IMMEDIATE` (takes the write
    lock at once, so a read-then-write can't fail with "database is locked"); commits what the
    session had open first, unless that began IMMEDIATE already. A no-op on PostgreSQL, where
    row locks do this job. Every repository function that writes starts with it."""
    if is_postgres(session):
        return
    if session.in_transaction():
        if session.connection().get_execution_options().get(_BEGIN_OPTION) == "IMMEDIATE":
            return  # holding the write lock already
        session.commit()
    session.connection(execution_options={_BEGIN_OPTION: "IMMEDIATE"})


def sqlite_immediate(connection: sa.Connection) -> sa.Connection:
    """`connection`, whose transactions begin IMMEDIATE on SQLite (unchanged elsewhere)."""
    if connection.dialect.name != "sqlite":
        return connection
    return connection.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})


def make_sessionmaker(engine: sa.Engine) -> sessionmaker[Session]:
    """A factory of sessions on `engine` whose objects stay loaded after commit."""
    return sessionmaker(engine, class_=Session, expire_on_commit=False)


@contextmanager
def session_scope(engine: sa.Engine) -> Iterator[Session]:
    """A session that commits what is left open on success and rolls back on an exception."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
