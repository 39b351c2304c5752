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
machines agree on `run_after` and heartbeat age. The statements live in `storage.queue_sql`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from storage import queue_sql as sql
from storage._rows import read_only
from storage.db import begin_immediate, is_postgres
from storage.errors import Conflict, NotFound
from storage.notify import JobEvent, notify_job_changed
from storage.retry import RetryPolicy
from storage.tables.jobs import FINAL_STATUSES, Job, JobCreate, JobStatus

DEFAULT_RETRY = RetryPolicy()
TODO, DOING = sql.TODO, sql.DOING


def _changed(session: Session, jobs: list[Job]) -> None:
    notify_job_changed(session, [JobEvent(j.id, j.status, j.kind) for j in jobs])
    session.commit()


def _set_owned(session: Session, job_id: int, owner: str, now_names: tuple[str, ...] = (),
               **values: Any) -> Job | None:
    """Set plain values (and `now_names` columns to now) on a job `owner` runs; None when it
    does not run it (any more)."""
    begin_immediate(session)
    pg = is_postgres(session)
    stmt = sql.owned_update_stmt(pg, tuple(values), now_names)
    bound = {f"v_{name}": value for name, value in values.items()}
    params = sql.with_now(pg, job_id=job_id, owner=owner, **bound)
    job = session.execute(stmt, params).scalar_one_or_none()
    _changed(session, [job] if job else [])
    return job


def _update_owned(session: Session, job_id: int, owner: str, **values: Any) -> Job | None:
    """Change a job `owner` runs with any SQL values (the rarer transitions)."""
    begin_immediate(session)
    stmt = (sa.update(Job)
            .where(Job.id == job_id, Job.worker_id == owner, Job.status == DOING)
            .values(**values, **sql.touched(session))
            .returning(Job).execution_options(**sql.ORM_RETURNING))
    job = session.execute(stmt).scalar_one_or_none()
    _changed(session, [job] if job else [])
    return job


def enqueue(*, session: Session, job_in: JobCreate) -> Job:
    """Add a job, or return the existing one with the same `idempotency_key` (race-safe: the
    key is UNIQUE and the insert is `ON CONFLICT DO NOTHING`). Raises `Conflict` if that key
    belongs to another workspace's job."""
    begin_immediate(session)
    pg = is_postgres(session)
    values = job_in.model_dump(exclude={"run_after"})
    values.update(status=TODO, attempts=0, progress={}, cancel_requested=False)
    if job_in.run_after is not None:
        values["run_after"] = job_in.run_after
    stmt = sql.insert_stmt(pg, job_in.idempotency_key is not None, job_in.run_after is not None)
    try:
        created = session.execute(stmt, sql.with_now(pg, **values)).scalar_one_or_none()
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


def claim(*, session: Session, worker_id: str, kinds: list[str] | None = None,
          prefer_kinds: list[str] | None = None) -> Job | None:
    """Take the next runnable job (lowest priority, then oldest; `prefer_kinds` first) and mark
    it `doing` for `worker_id`; None when there is nothing to do. `kinds` None takes any kind."""
    if kinds is not None and not kinds:
        return None
    begin_immediate(session)
    pg = is_postgres(session)
    params = sql.with_now(pg, worker_id=worker_id)
    if kinds is not None:
        params["kinds"] = list(kinds)
    if prefer_kinds:
        params["prefer"] = list(prefer_kinds)
    stmt = sql.claim_stmt(pg, kinds is not None, bool(prefer_kinds))
    job = session.execute(stmt, params).scalar_one_or_none()
    _changed(session, [job] if job else [])
    return job


def heartbeat(*, session: Session, job_id: int, worker_id: str) -> bool:
    """Record that `worker_id` still runs the job. False tells the worker to stop: the job was
    taken away (requeued as stalled) or a cancel was requested (then call `mark_cancelled`)."""
    begin_immediate(session)
    pg = is_postgres(session)
    params = sql.with_now(pg, job_id=job_id, owner=worker_id)
    cancel = session.execute(sql.heartbeat_stmt(pg), params).scalar_one_or_none()
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
                                  "finished_at": sql.now(session)}
    elif retry and delay is not None:
        values = {"status": TODO, "run_after": sql.later(session, delay), "worker_id": None,
                  "heartbeat_at": None}
    else:
        values = {"status": JobStatus.FAILED.value, "finished_at": sql.now(session)}
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
        finished_at=sa.case((Job.cancel_requested, sql.now(session)), else_=sa.null()),
        attempts=sa.case((Job.attempts > 0, Job.attempts - 1), else_=0),
        worker_id=None, heartbeat_at=None, run_after=sql.now(session))


def request_cancel(*, session: Session, job_id: int, workspace_id: int | None = None) -> Job:
    """Cancel a job: a `todo` one is `cancelled` at once; a `doing` one gets `cancel_requested`
    and its worker stops at its next step; a finished one is returned unchanged."""
    begin_immediate(session)
    scope = [Job.id == job_id]
    if workspace_id is not None:
        scope.append(Job.workspace_id == workspace_id)
    for where, values in (
        (Job.status == TODO,
         {"status": JobStatus.CANCELLED.value, "finished_at": sql.now(session)}),
        (sa.and_(Job.status == DOING, Job.cancel_requested.is_(False)),
         {"cancel_requested": True}),
    ):
        stmt = (sa.update(Job).where(*scope, where).values(**values, **sql.touched(session))
                .returning(Job).execution_options(**sql.ORM_RETURNING))
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
    stalled = [Job.status == DOING, Job.heartbeat_at < sql.later(session, -timeout_seconds)]
    now = sql.now(session)
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
        stmt = (sa.update(Job).where(*stalled, where).values(**values, **sql.touched(session))
                .returning(Job).execution_options(**sql.ORM_RETURNING))
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

