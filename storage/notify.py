"""Learning quickly that a job changed: PostgreSQL LISTEN/NOTIFY, or a cheap poll on SQLite.

Every queue function that changes a job calls `notify_job_changed` in its own transaction. On
PostgreSQL that is a `NOTIFY "lmops_jobs.<schema>"` delivered at commit; on SQLite it does
nothing and the watcher polls the jobs' `change_seq` (bumped on every change, in commit order)
instead, and changes to one job between two polls arrive as one event with the latest status.
Heartbeats are not changes.

    def on_change(event: JobEvent) -> None:
        print(event.job_id, event.status)

    with JobWatcher(url, on_change):      # a thread; events arrive within ~0.1 s
        ...
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import Session

from storage.db import is_postgres, make_engine

log = logging.getLogger(__name__)

CHANNEL = "lmops_jobs"
# One channel per schema (`lmops_jobs.public`): deployments or test runs that share a database
# in separate schemas don't hear each other. Computed by the database on both sides.
_CHANNEL_SQL = sa.func.left(sa.literal(CHANNEL + ".") + sa.func.current_schema(), 63)
POLL_INTERVAL = 0.1


@dataclass(frozen=True)
class JobEvent:
    """One job changed: its id, its status after the change, and its kind."""

    job_id: int
    status: str
    kind: str | None = None

    def to_payload(self) -> str:
        return json.dumps({"id": self.job_id, "status": self.status, "kind": self.kind})

    @classmethod
    def from_payload(cls, payload: str) -> JobEvent:
        data = json.loads(payload)
        return cls(job_id=int(data["id"]), status=str(data["status"]), kind=data.get("kind"))


def notify_job_changed(session: Session, events: list[JobEvent]) -> None:
    """Queue a notification per event, sent when the session's transaction commits (PostgreSQL
    only; SQLite watchers poll)."""
    if not events or not is_postgres(session):
        return
    for event in events:
        session.execute(sa.select(sa.func.pg_notify(_CHANNEL_SQL, event.to_payload())))


Callback = Callable[[JobEvent], None]


def watch_jobs(url: str | sa.URL, callback: Callback, *, stop_event: threading.Event,
               poll_interval: float = POLL_INTERVAL,
               ready: threading.Event | None = None) -> None:
    """Call `callback` for every job change until `stop_event` is set (blocking).

    `ready` is set once changes are being watched: a change committed after that is seen.
    A callback that raises is logged and the watch goes on.
    """
    url = make_url(url)
    if url.get_backend_name() == "postgresql":
        _listen(url, callback, stop_event, poll_interval, ready)
    else:
        _poll(url, callback, stop_event, poll_interval, ready)


class JobWatcher:
    """`watch_jobs` in a daemon thread: `start()` returns once watching; `stop()` ends it."""

    def __init__(self, url: str | sa.URL, callback: Callback, *,
                 poll_interval: float = POLL_INTERVAL) -> None:
        self.url = url
        self.callback = callback
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> Self:
        if self._thread is not None:
            raise RuntimeError("this JobWatcher was started already")
        self._thread = threading.Thread(
            target=watch_jobs, name="lmops-job-watcher", daemon=True,
            args=(self.url, self.callback),
            kwargs={"stop_event": self._stop, "poll_interval": self.poll_interval,
                    "ready": self._ready})
        self._thread.start()
        if not self._ready.wait(timeout):
            log.warning("the job watcher is not watching yet after %.0f s", timeout)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _deliver(callback: Callback, event: JobEvent) -> None:
    try:
        callback(event)
    except Exception:
        log.exception("job watcher callback failed for job %s", event.job_id)


def _listen(url: sa.URL, callback: Callback, stop: threading.Event, wait: float,
            ready: threading.Event | None) -> None:
    import psycopg  # only PostgreSQL users need it
    from psycopg import sql

    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    backoff = 0.5
    while not stop.is_set():
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                channel = conn.execute(f"SELECT left('{CHANNEL}.' || current_schema(), 63)") \
                    .fetchone()[0]
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                if ready is not None:
                    ready.set()
                backoff = 0.5
                while not stop.is_set():
                    for notify in conn.notifies(timeout=wait):
                        _deliver(callback, JobEvent.from_payload(notify.payload))
        except psycopg.Error as exc:
            log.warning("job watcher lost its PostgreSQL connection (%s); reconnecting", exc)
            stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)


def _poll(url: sa.URL, callback: Callback, stop: threading.Event, interval: float,
          ready: threading.Event | None) -> None:
    from storage.tables import Job

    engine = make_engine(url, pool_size=1)
    changes = (sa.select(Job.id, Job.status, Job.kind, Job.change_seq)
               .where(Job.change_seq > sa.bindparam("after"))
               .order_by(Job.change_seq, Job.id))
    last: int | None = None
    try:
        while not stop.is_set():
            try:
                with engine.connect() as conn:
                    if last is None:
                        last = conn.execute(sa.select(sa.func.max(Job.change_seq))).scalar() or 0
                        if ready is not None:
                            ready.set()
                    rows = conn.execute(changes, {"after": last}).all()
            except sa.exc.OperationalError as exc:
                log.warning("job watcher could not read the jobs table (%s); retrying", exc)
                rows = []
            for job_id, status, kind, seq in rows:
                last = max(last or 0, seq)
                _deliver(callback, JobEvent(job_id=job_id, status=status, kind=kind))
            stop.wait(interval)
    finally:
        engine.dispose()
