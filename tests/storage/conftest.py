"""Storage tests run on SQLite (a temporary file) always and on PostgreSQL when
LMOPS_TEST_POSTGRES_URL is set. PostgreSQL tests use a schema of their own per test session
(dropped at the end), so parallel runs and leftovers never collide."""

from __future__ import annotations

import os
import shutil
import time
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from storage.accounts import get_or_create_workspace
from storage.db import make_engine
from storage.migrate import upgrade
from storage.tables import metadata

POSTGRES_URL = os.environ.get("LMOPS_TEST_POSTGRES_URL")
NO_POSTGRES = "LMOPS_TEST_POSTGRES_URL is not set: the PostgreSQL half of the storage tests skips"
BACKENDS = ["sqlite", "postgres"]


def with_search_path(url: str, schema: str) -> str:
    """`url` whose connections use `schema` (PostgreSQL `options=-csearch_path=...`)."""
    return make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}) \
        .render_as_string(hide_password=False)


class PostgresSchemas:
    """Creates throw-away schemas in the test database and drops them all at the end. Names
    carry their creation time, so schemas a crashed run left behind are dropped an hour later."""

    PREFIX = "lmops_test_"
    STALE_AFTER_S = 3600

    def __init__(self, url: str) -> None:
        self.url = url
        self.admin = sa.create_engine(url, poolclass=NullPool)
        self.names: list[str] = []
        self._drop_stale()

    def _drop_stale(self) -> None:
        with self.admin.begin() as conn:
            names = conn.execute(sa.text("SELECT nspname FROM pg_namespace")).scalars().all()
            for name in (n for n in names if n.startswith(self.PREFIX)):
                created = name.removeprefix(self.PREFIX).split("_")[0]
                if created.isdigit() and time.time() - int(created) > self.STALE_AFTER_S:
                    conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")

    def create(self) -> str:
        name = f"{self.PREFIX}{int(time.time())}_{uuid.uuid4().hex[:8]}"
        with self.admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {name}")
        self.names.append(name)
        return with_search_path(self.url, name)

    def drop_all(self) -> None:
        with self.admin.begin() as conn:
            for name in self.names:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_schemas():
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    schemas = PostgresSchemas(POSTGRES_URL)
    yield schemas
    schemas.drop_all()


@pytest.fixture(scope="session")
def pg_migrated_url(pg_schemas) -> str:
    url = pg_schemas.create()
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite-template") / "lmops.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def fresh_url(backend, tmp_path, request) -> str:
    """An empty database (no tables) on the backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    return request.getfixturevalue("pg_schemas").create()


@pytest.fixture
def db_url(backend, tmp_path, request) -> str:
    """A migrated, empty database on the backend, private to the test."""
    if backend == "sqlite":
        path = tmp_path / "lmops.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_migrated_url")
    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:  # DELETE is much faster than TRUNCATE on tiny tables
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()
    return url


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def workspace(session):
    return get_or_create_workspace(session=session, team_id="T0001", name="Acme")


@pytest.fixture
def other_workspace(session):
    return get_or_create_workspace(session=session, team_id="T0002", name="Globex")
