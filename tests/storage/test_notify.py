import threading
import time

import pytest

from storage import queue
from storage.notify import JobEvent, JobWatcher, watch_jobs
from storage.tables import JobCreate


class Seen:
    def __init__(self) -> None:
        self.events: list[tuple[float, JobEvent]] = []
        self.cond = threading.Condition()

    def __call__(self, event: JobEvent) -> None:
        with self.cond:
            self.events.append((time.monotonic(), event))
            self.cond.notify_all()

    def wait_for(self, job_id: int, status: str, timeout: float = 5.0) -> float | None:
        """Seconds until that event arrived (measured from now), or None."""
        started = time.monotonic()
        with self.cond:
            found = self.cond.wait_for(lambda: any(
                e.job_id == job_id and e.status == status for _, e in self.events), timeout)
        if not found:
            return None
        return time.monotonic() - started


def test_watcher_sees_each_change_within_a_second(backend, db_url, session, workspace):
    seen = Seen()
    with JobWatcher(db_url, seen, poll_interval=0.1):
        job = queue.enqueue(session=session, job_in=JobCreate(
            workspace_id=workspace.id, kind="classify"))
        waited = seen.wait_for(job.id, "todo")
        assert waited is not None and waited < 1.0
        queue.claim(session=session, worker_id="w")
        assert (seen.wait_for(job.id, "doing") or 9) < 1.0
        queue.set_progress(session=session, job_id=job.id, worker_id="w", progress={"n": 1})
        queue.finish(session=session, job_id=job.id, worker_id="w", result={"label": "x"})
        assert (seen.wait_for(job.id, "succeeded") or 9) < 1.0
    statuses = [e.status for _, e in seen.events if e.job_id == job.id]
    if backend == "postgres":  # every NOTIFY arrives
        assert statuses == ["todo", "doing", "doing", "succeeded"]
    else:  # the poll folds changes made between two polls into the latest one
        assert statuses[:2] == ["todo", "doing"] and statuses[-1] == "succeeded"
    assert all(e.kind == "classify" for _, e in seen.events)


def test_heartbeats_are_not_changes(db_url, session, workspace):
    seen = Seen()
    job = queue.enqueue(session=session, job_in=JobCreate(workspace_id=workspace.id, kind="x"))
    queue.claim(session=session, worker_id="w")
    with JobWatcher(db_url, seen, poll_interval=0.05):
        for _ in range(3):
            queue.heartbeat(session=session, job_id=job.id, worker_id="w")
        queue.request_cancel(session=session, job_id=job.id)
        assert seen.wait_for(job.id, "doing") is not None  # the cancel request
    assert len(seen.events) == 1


def test_a_failing_callback_does_not_stop_the_watch(db_url, session, workspace):
    seen = Seen()

    def flaky(event: JobEvent) -> None:
        seen(event)
        raise RuntimeError("callback bug")

    stop = threading.Event()
    ready = threading.Event()
    thread = threading.Thread(target=watch_jobs, args=(db_url, flaky),
                              kwargs={"stop_event": stop, "ready": ready}, daemon=True)
    thread.start()
    assert ready.wait(10)
    first = queue.enqueue(session=session, job_in=JobCreate(workspace_id=workspace.id, kind="x"))
    second = queue.enqueue(session=session, job_in=JobCreate(workspace_id=workspace.id, kind="x"))
    assert seen.wait_for(first.id, "todo") is not None
    assert seen.wait_for(second.id, "todo") is not None
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


def test_event_payload_round_trips():
    event = JobEvent(job_id=7, status="doing", kind="finetune")
    assert JobEvent.from_payload(event.to_payload()) == event


def test_schemas_sharing_a_database_do_not_hear_each_other(backend, db_url, fresh_url, session,
                                                            workspace):
    if backend != "postgres":
        pytest.skip("SQLite databases are separate files")
    from sqlmodel import Session

    from storage.accounts import get_or_create_workspace
    from storage.db import make_engine
    from storage.migrate import upgrade

    upgrade(fresh_url)
    seen = Seen()
    with JobWatcher(db_url, seen):
        engine = make_engine(fresh_url)
        with Session(engine) as other:
            elsewhere = get_or_create_workspace(session=other, team_id="T9", name="elsewhere")
            queue.enqueue(session=other, job_in=JobCreate(workspace_id=elsewhere.id, kind="x"))
        engine.dispose()
        mine = queue.enqueue(session=session, job_in=JobCreate(workspace_id=workspace.id,
                                                               kind="x"))
        assert seen.wait_for(mine.id, "todo") is not None
    assert [e.job_id for _, e in seen.events] == [mine.id]
