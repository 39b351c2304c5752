"""The queue's SQL: the statements `storage.queue` runs, and its clock.

The hot statements (enqueue, claim, heartbeat, progress, finish) are built once per shape with
bind parameters, so SQLAlchemy reuses their compiled form: that halves their CPU cost. `now`
is the database clock on PostgreSQL, so workers on several machines agree on `run_after` and
heartbeat ages, and a bound parameter (this process's clock) on SQLite; `with_now` adds it.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased
from sqlmodel import Session

from storage.columns import UTCDateTime, utcnow
from storage.db import is_postgres
from storage.tables.jobs import Job, JobStatus

TODO, DOING = JobStatus.TODO.value, JobStatus.DOING.value
ORM_RETURNING = {"synchronize_session": False, "populate_existing": True}
COLUMNS = Job.__table__.c

LATEST = aliased(Job, name="latest")
TODO_JOB = aliased(Job, name="todo")
# Read under the write lock on SQLite, so `change_seq` follows commit order there.
NEXT_SEQ = sa.select(sa.func.coalesce(sa.func.max(LATEST.change_seq), 0) + 1).scalar_subquery()


def now_expr(pg: bool) -> Any:
    return sa.func.now() if pg else sa.bindparam("now", type_=UTCDateTime())


def with_now(pg: bool, **params: Any) -> dict[str, Any]:
    return params if pg else {**params, "now": utcnow()}


def now(session: Session) -> Any:
    """The current time as a SQL value (for the statements built per call)."""
    return later(session, 0)


def later(session: Session, seconds: float) -> Any:
    if is_postgres(session):
        return sa.func.now() + timedelta(seconds=seconds) if seconds else sa.func.now()
    return sa.literal(utcnow() + timedelta(seconds=seconds), UTCDateTime())


def touched(session: Session) -> dict[str, Any]:
    return {"updated_at": now(session), "change_seq": NEXT_SEQ}


def owned(stmt):
    return stmt.where(Job.id == sa.bindparam("job_id"), Job.worker_id == sa.bindparam("owner"),
                      Job.status == DOING)


@cache
def owned_update_stmt(pg: bool, set_names: tuple[str, ...], now_names: tuple[str, ...]):
    now = now_expr(pg)
    values = {name: sa.bindparam(f"v_{name}", type_=COLUMNS[name].type) for name in set_names}
    values.update({name: now for name in (*now_names, "updated_at")}, change_seq=NEXT_SEQ)
    return (owned(sa.update(Job)).values(**values).returning(Job)
            .execution_options(**ORM_RETURNING))


@cache
def insert_stmt(pg: bool, idempotent: bool, delayed: bool):
    now = now_expr(pg)
    stamps = {"created_at": now, "updated_at": now, "change_seq": NEXT_SEQ}
    if not delayed:
        stamps["run_after"] = now
    stmt = (postgresql.insert if pg else sqlite.insert)(Job).values(**stamps)
    if idempotent:
        stmt = stmt.on_conflict_do_nothing(index_elements=["idempotency_key"])
    return stmt.returning(Job).execution_options(**ORM_RETURNING)


@cache
def claim_stmt(pg: bool, by_kind: bool, prefer: bool):
    now = now_expr(pg)
    pick = sa.select(TODO_JOB.id).where(TODO_JOB.status == TODO, TODO_JOB.run_after <= now)
    if by_kind:
        pick = pick.where(TODO_JOB.kind.in_(sa.bindparam("kinds", expanding=True)))
    order: list[Any] = []
    if prefer:
        order.append(sa.case((TODO_JOB.kind.in_(sa.bindparam("prefer", expanding=True)), 0),
                             else_=1))
    pick = (pick.order_by(*order, TODO_JOB.priority, TODO_JOB.id).limit(1)
            .with_for_update(skip_locked=True))
    return (sa.update(Job).where(Job.id == pick.scalar_subquery())
            .values(status=DOING, worker_id=sa.bindparam("worker_id"),
                    attempts=Job.attempts + 1, heartbeat_at=now, started_at=now,
                    finished_at=None, updated_at=now, change_seq=NEXT_SEQ)
            .returning(Job).execution_options(**ORM_RETURNING))


@cache
def heartbeat_stmt(pg: bool):
    return (owned(sa.update(Job)).values(heartbeat_at=now_expr(pg))
            .returning(Job.cancel_requested).execution_options(synchronize_session=False))


