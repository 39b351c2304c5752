"""Schema migrations (Alembic), driven from code: no alembic.ini needed.

    storage.migrate.upgrade(url)            # what `lmops db upgrade` and start-up call
    storage.migrate.downgrade(url, "base")

The scripts live in `storage/migrations`. To write a new revision by hand from a checkout:
`python -c "from storage.migrate import revision; revision(URL, 'message', autogenerate=True)"`.
"""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from storage.db import make_engine
from storage.errors import MigrationError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# PostgreSQL advisory lock taken while migrating, so processes starting together (the bot and
# its worker) take turns; on SQLite the migration's BEGIN IMMEDIATE does the same.
MIGRATION_LOCK_ID = 0x6C6D6F7073  # "lmops"


def alembic_config(url: str | sa.URL) -> Config:
    """An Alembic `Config` for `url`, pointing at `storage/migrations`.

    The URL travels in `config.attributes` (not the ini options) so `%` in it needs no escaping.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    return config


def upgrade(url: str | sa.URL, revision: str = "head") -> None:
    """Bring the database at `url` to `revision` (default: the newest)."""
    _run(command.upgrade, url, revision)


def downgrade(url: str | sa.URL, revision: str) -> None:
    """Take the database at `url` back to `revision` (`"base"` drops every table)."""
    _run(command.downgrade, url, revision)


def revision(url: str | sa.URL, message: str, *, autogenerate: bool = True) -> None:
    """Write a new revision script (a developer tool; compare against the database at `url`)."""
    command.revision(alembic_config(url), message=message, autogenerate=autogenerate)


def current_revision(url: str | sa.URL) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str:
    """The newest revision in `storage/migrations`."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


# Alembic keeps its context in module globals: one command at a time per process. Between
# processes, env.py takes a PostgreSQL advisory lock (or SQLite's write lock).
_ALEMBIC_LOCK = threading.Lock()


def _run(fn, url: str | sa.URL, revision: str) -> None:
    try:
        with _ALEMBIC_LOCK:
            fn(alembic_config(url), revision)
    except sa.exc.SQLAlchemyError as exc:
        raise MigrationError(f"migrating the database to {revision!r} failed: {exc}") from exc
