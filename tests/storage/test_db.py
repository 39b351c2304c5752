import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from storage.accounts import get_local_workspace, get_or_create_workspace, get_workspace
from storage.columns import utcnow
from storage.db import begin_immediate, make_engine, session_scope
from storage.errors import NotFound
from storage.tables import Workspace


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    engine.dispose()


def test_begin_immediate_takes_the_write_lock(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with Session(engine) as first, Session(engine) as second:
        begin_immediate(first)
        started = time.monotonic()
        release = threading.Timer(0.3, first.commit)
        release.start()
        begin_immediate(second)  # waits until `first` lets go of the write lock
        waited = time.monotonic() - started
        second.commit()
        release.join()
    engine.dispose()
    assert waited >= 0.25


def test_timestamps_come_back_aware_utc(session):
    moment = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    session.add(Workspace(team_id="TZ", name="tz", created_at=moment))
    session.commit()
    session.expunge_all()
    stored = session.exec(select(Workspace).where(Workspace.team_id == "TZ")).one()
    assert stored.created_at == moment
    assert stored.created_at.tzinfo == UTC


def test_naive_datetimes_are_refused(session):
    session.add(Workspace(team_id="naive", created_at=datetime(2030, 1, 1)))
    with pytest.raises(sa.exc.StatementError, match="naive"):
        session.commit()
    session.rollback()


def test_session_scope_commits_or_rolls_back(engine):
    with session_scope(engine) as session:
        session.add(Workspace(team_id="kept"))
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        session.add(Workspace(team_id="dropped"))
        session.flush()
        raise RuntimeError("boom")
    with session_scope(engine) as session:
        teams = set(session.exec(select(Workspace.team_id)).all())
    assert "kept" in teams and "dropped" not in teams


def test_get_or_create_workspace_is_idempotent_and_race_safe(engine):
    ids: list[int] = []
    barrier = threading.Barrier(4)

    def create():
        with session_scope(engine) as session:
            barrier.wait()
            ids.append(get_or_create_workspace(session=session, team_id="TRACE", name="r").id)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1 and len(ids) == 4
    with session_scope(engine) as session:
        renamed = get_or_create_workspace(session=session, team_id="TRACE", name="Renamed")
        assert renamed.id == ids[0] and renamed.name == "Renamed"
        assert get_workspace(session=session, team_id="TRACE").name == "Renamed"
        local = get_local_workspace(session=session)
        assert local.team_id == "local"
        assert get_local_workspace(session=session).id == local.id
        with pytest.raises(NotFound):
            get_workspace(session=session, team_id="nope")


def test_created_at_defaults_to_now(session, workspace):
    assert abs((utcnow() - workspace.created_at).total_seconds()) < 60


def test_begin_immediate_keeps_an_immediate_transaction(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with Session(engine) as session:
        session.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        session.commit()
        begin_immediate(session)
        session.execute(sa.text("INSERT INTO t VALUES (1)"))
        begin_immediate(session)  # same transaction: nothing committed in between
        session.rollback()
        assert session.execute(sa.text("SELECT count(*) FROM t")).scalar() == 0
    engine.dispose()
