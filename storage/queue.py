"""The job queue: enqueue, claim, heartbeat, progress, finish, fail/retry, cancel, requeue.

Design after procrastinate: a job is claimed with ONE statement,

    UPDATE jobs SET status='doing', worker_id=..., attempts=attempts+1, ...
    WHERE id = (SELECT id FROM jobs WHERE status='todo' AND run_after <= now() [AND kind IN ..]
                ORDER BY [preferred kinds first,] priority, id
                LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING *

(on SQLite inside `BEGIN IMMEDIATE`, which serialises writers). Workers heartbeat; a job whose
heartbeat is older than the timeout goes back to `todo` (`requeue_stalled`). Every function
that changes a job commits, bumps `updated_at`/`change_seq` and notifies watchers
(`storage.notify`). Functions a worker calls take its `worker_id` and do nothing (return
None or False) when the job is no longer its own: a stalled job may have moved on.

On PostgreSQL the database clock is used for every queue timestamp, so workers on several
machines agree on `run_after` and heartbeat age.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from storage._rows import read_only
from storage.columns import UTCDateTime, utcnow
from storage.db import begin_immediate, is_postgres
from storage.errors import Conflict, NotFound
from storage.notify import JobEvent, notify_job_changed
from storage.retry import RetryPolicy
from storage.tables.jobs import FINAL_STATUSES, Job, JobCreate, JobStatus, default_priority

DEFAULT_RETRY = RetryPolicy()
TODO, DOING = JobStatus.TODO.value, JobStatus.DOING.value
_ORM = {"synchronize_session": False, "populate_existing": True}
_COLUMNS = Job.__table__.c

# The hot statements (enqueue, claim, heartbeat, progress, finish) are built once per shape
# with bind parameters, so SQLAlchemy reuses their compiled form: it halves their CPU cost.
# `now` is the database clock on PostgreSQL and a bound parameter (this process's clock) on
# SQLite; `_params` adds it.
_LATEST = aliased(Job, name="latest")
_TODO = aliased(Job, name="todo")
# Read under the write lock on SQLite, so `change_seq` follows commit order there.
_NEXT_SEQ = sa.select(sa.func.coalesce(sa.func.max(_LATEST.change_seq), 0) + 1).scalar_subquery()


def _now_expr(pg: bool) -> Any:
    return sa.func.now() if pg else sa.bindparam("now", type_=UTCDateTime())


def _params(pg: bool, **params: Any) -> dict[str, Any]:
    return params if pg else {**params, "now": utcnow()}


def _now(session: Session) -> Any:
    """The current time as a SQL value (for the statements built per call)."""
    return _later(session, 0)


def _later(session: Session, seconds: float) -> Any:
    if is_postgres(session):
        return sa.func.now() + timedelta(seconds=seconds) if seconds else sa.func.now()
    return sa.literal(utcnow() + timedelta(seconds=seconds), UTCDateTime())


def _touched(session: Session) -> dict[str, Any]:
    return {"updated_at": _now(session), "change_seq": _NEXT_SEQ}


def _changed(session: Session, jobs: list[Job]) -> None:
    notify_job_changed(session, [JobEvent(j.id, j.status, j.kind) for j in jobs])
    session.commit()


def _owned(stmt):
    return stmt.where(Job.id == sa.bindparam("job_id"), Job.worker_id == sa.bindparam("owner"),
                      Job.status == DOING)


@cache
def _owned_update_stmt(pg: bool, set_names: tuple[str, ...], now_names: tuple[str, ...]):
    now = _now_expr(pg)
    values = {name: sa.bindparam(f"v_{name}", type_=_COLUMNS[name].type) for name in set_names}
    values.update({name: now for name in (*now_names, "updated_at")}, change_seq=_NEXT_SEQ)
    return (_owned(sa.update(Job)).values(**values).returning(Job)
            .execution_options(**_ORM))


def _set_owned(session: Session, job_id: int, owner: str, now_names: tuple[str, ...] = (),
               **values: Any) -> Job | None:
    """Set plain values (and `now_names` columns to now) on a job `owner` runs; None when it
    does not run it (any more)."""
    begin_immediate(session)
    pg = is_postgres(session)
    stmt = _owned_update_stmt(pg, tuple(values), now_names)
    params = _params(pg, job_id=job_id, owner=owner, **{f"v_{k}": v for k, v in values.items()})
    job = session.execute(stmt, params).scalar_one_or_none()
    _changed(session, [job] if job else [])
    return job


def _update_owned(session: Session, job_id: int, owner: str, **values: Any) -> Job | None:
    """Change a job `owner` runs with any SQL values (the rarer transitions)."""
    begin_immediate(session)
    stmt = (sa.update(Job)
            .where(Job.id == job_id, Job.worker_id == owner, Job.status == DOING)
            .values(**values, **_touched(session))
            .returning(Job).execution_options(**_ORM))
    job = session.execute(stmt).scalar_one_or_none()
    _changed(session, [job] if job else [])
    return job


@cache
def _insert_stmt(pg: bool, idempotent: bool, delayed: bool):
    now = _now_expr(pg)
    stamps = {"created_at": now, "updated_at": now, "change_seq": _NEXT_SEQ}
    if not delayed:
        stamps["run_after"] = now
    stmt = (postgresql.insert if pg else sqlite.insert)(Job).values(**stamps)
    if idempotent:
        stmt = stmt.on_conflict_do_nothing(index_elements=["idempotency_key"])
    return stmt.returning(Job).execution_options(**_ORM)


def enqueue(*, session: Session, job_in: JobCreate) -> Job:
    """Add a job, or return the existing one with the same `idempotency_key` (race-safe: the
    key is UNIQUE and the insert is `ON CONFLICT DO NOTHING`). Raises `Conflict` if that key
    belongs to another workspace's job."""
    begin_immediate(session)
    pg = is_postgres(session)
    values = job_in.model_dump(exclude={"priority", "run_after"})
    values.update(status=TODO, attempts=0, progress={}, cancel_requested=False,
                  priority=default_priority(job_in.kind) if job_in.priority is None
                  else job_in.priority)
    if job_in.run_after is not None:
        values["run_after"] = job_in.run_after
    stmt = _insert_stmt(pg, job_in.idempotency_key is not None, job_in.run_after is not None)
    try:
        created = session.execute(stmt, _params(pg, **values)).scalar_one_or_none()
    except sa.exc.IntegrityError as exc:
        session.rollback()
        raise NotFound(f"no workspace {job_in.workspace_id}") from exc
    if created is not None:
        _changed(session, [created])
        return created
    existing = session.exec(
        select(Job).where(Job.idempotency_key == job_in.idempotency_key)
        .execution_options(populate_existing=True)).one()
    session.commit()
    if existing.workspace_id != job_in.workspace_id:
        raise Conflict(f"idempotency key {job_in.idempotency_key!r} is taken by another workspace")
    return existing


@cache
def _claim_stmt(pg: bool, by_kind: bool, prefer: bool):
    now = _now_expr(pg)
    pick = sa.select(_TODO.id).where(_TODO.status == TODO, _TODO.run_after <= now)
    if by_kind:
        pick = pick.where(_TODO.kind.in_(sa.bindparam("kinds", expanding=True)))
    order: list[Any] = []
    if prefer:
        order.append(sa.case((_TODO.kind.in_(sa.bindparam("prefer", expanding=True)), 0),
                             else_=1))
    pick = (pick.order_by(*order, _TODO.priority, _TODO.id).limit(1)
            .with_for_update(skip_locked=True))
    return (sa.update(Job).where(Job.id == pick.scalar_subquery())
            .values(status=DOING, worker_id=sa.bindparam("worker_id"),
                    attempts=Job.attempts + 1, heartbeat_at=now, started_at=now,
                    finished_at=None, updated_at=now, change_seq=_NEXT_SEQ)
            .returning(Job).execution_options(**_ORM))


def claim(*, session: Session, worker_id: str, kinds: list[str] | None = None,
          prefer_kinds: list[str] | None = None) -> Job | None:
    """Take the next runnable job (lowest priority, then oldest; `prefer_kinds` first) and mark
    it `doing` for `worker_id`; None when there is nothing to do. `kinds` None takes any kind."""
    if kinds is not None and not kinds:
        return None
    begin_immediate(session)
    pg = is_postgres(session)
    params = _params(pg, worker_id=worker_id)
    if kinds is not None:
        params["kinds"] = list(kinds)
    if prefer_kinds:
        params["prefer"] = list(prefer_kinds)
    stmt = _claim_stmt(pg, kinds is not None, bool(prefer_kinds))
    job = session.execute(stmt, params).scalar_one_or_none()
    _changed(session, [job] if job else [])
    return job


@cache
def _heartbeat_stmt(pg: bool):
    return (_owned(sa.update(Job)).values(heartbeat_at=_now_expr(pg))
            .returning(Job.cancel_requested).execution_options(synchronize_session=False))


def heartbeat(*, session: Session, job_id: int, worker_id: str) -> bool:
    """Record that `worker_id` still runs the job. False tells the worker to stop: the job was
    taken away (requeued as stalled) or a cancel was requested (then call `mark_cancelled`)."""
    begin_immediate(session)
    pg = is_postgres(session)
    cancel = session.execute(_heartbeat_stmt(pg),
                             _params(pg, job_id=job_id, owner=worker_id)).scalar_one_or_none()
    session.commit()
    return cancel is False


def set_progress(*, session: Session, job_id: int, worker_id: str,
                 progress: dict[str, Any]) -> bool:
    """Store the job's progress (counts as a heartbeat); returns what `heartbeat` returns."""
    job = _set_owned(session, job_id, worker_id, ("heartbeat_at",), progress=progress)
    return job is not None and not job.cancel_requested


def finish(*, session: Session, job_id: int, worker_id: str,
           result: dict[str, Any] | None = None) -> Job | None:
    """Mark the job succeeded with its result; None if this worker no longer owns it."""
    return _set_owned(session, job_id, worker_id, ("finished_at", "heartbeat_at"),
                      status=JobStatus.SUCCEEDED.value, result=result, error=None)


def fail(*, session: Session, job_id: int, worker_id: str, error: str,
         policy: RetryPolicy = DEFAULT_RETRY, retry: bool = True) -> Job | None:
    """Record a failed attempt: back to `todo` after the policy's delay while attempts remain
    (both the job's `max_attempts` and the policy's cap), else `failed`. The error is kept
    either way. `retry=False` fails at once (a bad input won't get better). A job whose cancel
    was requested ends `cancelled`. None if this worker no longer owns the job."""
    begin_immediate(session)
    job = session.exec(
        select(Job).where(Job.id == job_id, Job.worker_id == worker_id, Job.status == DOING)
        .with_for_update().execution_options(populate_existing=True)).one_or_none()
    if job is None:
        session.commit()
        return None
    delay = policy.next_delay(job.attempts) if job.attempts < job.max_attempts else None
    if job.cancel_requested:
        values: dict[str, Any] = {"status": JobStatus.CANCELLED.value,
                                  "finished_at": _now(session)}
    elif retry and delay is not None:
        values = {"status": TODO, "run_after": _later(session, delay), "worker_id": None,
                  "heartbeat_at": None}
    else:
        values = {"status": JobStatus.FAILED.value, "finished_at": _now(session)}
    return _update_owned(session, job_id, worker_id, error=error, **values)


def mark_cancelled(*, session: Session, job_id: int, worker_id: str) -> Job | None:
    """The worker stopped the job after a cancel request: mark it `cancelled`."""
    return _set_owned(session, job_id, worker_id, ("finished_at",),
                      status=JobStatus.CANCELLED.value)


def release(*, session: Session, job_id: int, worker_id: str) -> Job | None:
    """A worker shutting down (SIGTERM) hands its job back: `todo` again, the attempt not
    counted (or `cancelled` if a cancel was requested). None if it no longer owns the job."""
    begin_immediate(session)
    return _update_owned(
        session, job_id, worker_id,
        status=sa.case((Job.cancel_requested, JobStatus.CANCELLED.value), else_=TODO),
        finished_at=sa.case((Job.cancel_requested, _now(session)), else_=sa.null()),
        attempts=sa.case((Job.attempts > 0, Job.attempts - 1), else_=0),
        worker_id=None, heartbeat_at=None, run_after=_now(session))


def request_cancel(*, session: Session, job_id: int, workspace_id: int | None = None) -> Job:
    """Cancel a job: a `todo` one is `cancelled` at once; a `doing` one gets `cancel_requested`
    and its worker stops at its next step; a finished one is returned unchanged."""
    begin_immediate(session)
    scope = [Job.id == job_id]
    if workspace_id is not None:
        scope.append(Job.workspace_id == workspace_id)
    for where, values in (
        (Job.status == TODO, {"status": JobStatus.CANCELLED.value, "finished_at": _now(session)}),
        (sa.and_(Job.status == DOING, Job.cancel_requested.is_(False)),
         {"cancel_requested": True}),
    ):
        stmt = (sa.update(Job).where(*scope, where).values(**values, **_touched(session))
                .returning(Job).execution_options(**_ORM))
        job = session.execute(stmt).scalar_one_or_none()
        if job is not None:
            _changed(session, [job])
            return job
    return get_job(session=session, job_id=job_id, workspace_id=workspace_id)


def requeue_stalled(*, session: Session, timeout_seconds: float) -> list[int]:
    """Deal with `doing` jobs whose heartbeat is older than `timeout_seconds`: back to `todo`
    while attempts remain (the lost attempt was counted when it was claimed), else `failed`
    with "worker stopped heartbeating"; `cancelled` if a cancel was requested. Returns their
    ids."""
    begin_immediate(session)
    stalled = [Job.status == DOING, Job.heartbeat_at < _later(session, -timeout_seconds)]
    now = _now(session)
    outcomes = (
        (Job.cancel_requested.is_(True),
         {"status": JobStatus.CANCELLED.value, "finished_at": now}),
        (Job.attempts >= Job.max_attempts,
         {"status": JobStatus.FAILED.value, "finished_at": now,
          "error": "worker " + sa.func.coalesce(Job.worker_id, "?") + " stopped heartbeating"}),
        (sa.true(), {"status": TODO, "worker_id": None, "heartbeat_at": None, "run_after": now}),
    )
    jobs: list[Job] = []
    for where, values in outcomes:
        stmt = (sa.update(Job).where(*stalled, where).values(**values, **_touched(session))
                .returning(Job).execution_options(**_ORM))
        jobs.extend(session.execute(stmt).scalars().all())
    _changed(session, jobs)
    return sorted(job.id for job in jobs)


@read_only
def get_job(*, session: Session, job_id: int, workspace_id: int | None = None) -> Job:
    """One job (only within `workspace_id` when given); raises `NotFound`."""
    query = select(Job).where(Job.id == job_id)
    if workspace_id is not None:
        query = query.where(Job.workspace_id == workspace_id)
    job = session.exec(query.execution_options(populate_existing=True)).one_or_none()
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


@read_only
def list_jobs(*, session: Session, workspace_id: int | None = None,
              statuses: list[str] | None = None, kinds: list[str] | None = None,
              limit: int = 50) -> list[Job]:
    """The newest jobs first, optionally of one workspace, some statuses or kinds."""
    query = select(Job)
    if workspace_id is not None:
        query = query.where(Job.workspace_id == workspace_id)
    if statuses:
        query = query.where(Job.status.in_(statuses))
    if kinds:
        query = query.where(Job.kind.in_(kinds))
    query = query.order_by(Job.id.desc()).limit(limit)
    return list(session.exec(query.execution_options(populate_existing=True)).all())


@read_only
def changed_jobs(*, session: Session, after_seq: int, limit: int = 500) -> list[Job]:
    """Jobs changed after `change_seq` value `after_seq`, oldest change first (a reporter's
    catch-up after a restart)."""
    query = (select(Job).where(Job.change_seq > after_seq)
             .order_by(Job.change_seq, Job.id).limit(limit))
    return list(session.exec(query.execution_options(populate_existing=True)).all())


@read_only
def count_jobs(*, session: Session, workspace_id: int | None = None) -> dict[str, int]:
    """Number of jobs per status (every status present, zeros included): for /metrics."""
    query = sa.select(Job.status, sa.func.count()).group_by(Job.status)
    if workspace_id is not None:
        query = query.where(Job.workspace_id == workspace_id)
    counts = {status.value: 0 for status in JobStatus}
    counts.update({status: n for status, n in session.execute(query).all()})
    return counts


def set_status_message(*, session: Session, job_id: int, status_ts: str) -> None:
    """Remember the Slack message the bot keeps updated with this job's status."""
    begin_immediate(session)
    session.execute(sa.update(Job).where(Job.id == job_id).values(status_ts=status_ts)
                    .execution_options(synchronize_session=False))
    session.commit()


def is_final(job: Job) -> bool:
    """True once the job succeeded, failed or was cancelled."""
    return job.status in FINAL_STATUSES


def seconds_since(moment: datetime | None) -> float | None:
    """Age of a stored timestamp in seconds (None stays None)."""
    return None if moment is None else (utcnow() - moment).total_seconds()
