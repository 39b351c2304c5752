import threading

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage.db import make_engine, sqlite_immediate
from storage.migrate import MIGRATION_LOCK_ID, current_revision, downgrade, head_revision, upgrade
from storage.tables import metadata


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def _differences(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_upgrade_matches_the_models_and_downgrade_removes_everything(fresh_url):
    assert current_revision(fresh_url) is None
    upgrade(fresh_url)
    assert current_revision(fresh_url) == head_revision()
    assert set(metadata.tables) <= _tables(fresh_url)
    assert _differences(fresh_url) == []

    upgrade(fresh_url)  # again: a no-op, as at every start-up
    downgrade(fresh_url, "base")
    assert current_revision(fresh_url) is None
    assert _tables(fresh_url) <= {"alembic_version"}

    upgrade(fresh_url)  # and up again from nothing
    assert _differences(fresh_url) == []


def test_foreign_keys_cascade_after_migration(fresh_url):
    upgrade(fresh_url)
    engine = make_engine(fresh_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO workspaces (team_id, name, created_at) VALUES ('T', 'T', '2030-01-01')")
        conn.exec_driver_sql(
            "INSERT INTO audit_log (workspace_id, actor, action, details, at) "
            "VALUES (1, 'U', 'x', '{}', '2030-01-01')")
        conn.exec_driver_sql("DELETE FROM workspaces")
        assert conn.exec_driver_sql("SELECT count(*) FROM audit_log").scalar() == 0
    engine.dispose()


def test_upgrade_waits_for_another_process_migrating(fresh_url):
    """The bot and its worker child both upgrade at start-up: they take turns, through a
    PostgreSQL advisory lock or SQLite's write lock. Here the test holds that lock."""
    engine = make_engine(fresh_url)
    with sqlite_immediate(engine.connect()) as holder:
        holder.begin()
        if holder.dialect.name == "postgresql":
            holder.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
        else:
            holder.exec_driver_sql("CREATE TABLE placeholder (x INTEGER)")  # BEGIN IMMEDIATE
        waiting = threading.Thread(target=upgrade, args=(fresh_url,))
        waiting.start()
        waiting.join(1.0)
        assert waiting.is_alive(), "upgrade did not wait for the lock"
        holder.commit()
    waiting.join(30)
    engine.dispose()
    assert current_revision(fresh_url) == head_revision()


def test_threads_may_upgrade_together(fresh_url):
    errors: list[BaseException] = []

    def start_up():
        try:
            upgrade(fresh_url)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start_up) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert current_revision(fresh_url) == head_revision()


def test_jobs_finished_before_0002_count_as_reported(fresh_url):
    upgrade(fresh_url, "0001")
    engine = make_engine(fresh_url)
    now = "2026-11-28 12:00:00+00:00"
    job = ("INSERT INTO jobs (workspace_id, kind, params, status, priority, attempts, max_attempts,"
           " run_after, progress, cancel_requested, created_at, updated_at, finished_at, change_seq,"
           " channel_id) VALUES (1, 'noop', '{}', :status, 0, 0, 3, :now, '{}', false, :now, :now,"
           " :finished, 1, 'C1')")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO workspaces (id, team_id, name, created_at) "
                                 "VALUES (1, 'T1', 'Acme', :now)"), {"now": now})
            conn.execute(sa.text(job), {"status": "succeeded", "now": now, "finished": now})
            conn.execute(sa.text(job), {"status": "doing", "now": now, "finished": None})
        upgrade(fresh_url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT status, reported_at FROM jobs ORDER BY id")).all()
        assert [(status, reported is not None) for status, reported in rows] == \
            [("succeeded", True), ("doing", False)]
    finally:
        engine.dispose()
    downgrade(fresh_url, "0001")
    assert current_revision(fresh_url) == "0001"
