"""Schedules, feedback and the audit log."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from storage._rows import fresh, insert_row, read_only
from storage.columns import utcnow
from storage.db import begin_immediate
from storage.errors import NotFound
from storage.tables.activity import (
    AuditEntry,
    AuditEntryCreate,
    Feedback,
    FeedbackCreate,
    Schedule,
    ScheduleCreate,
)


def create_schedule(*, session: Session, schedule_in: ScheduleCreate) -> Schedule:
    """Store a recurring job (the bot's scheduler turns it into an APScheduler trigger)."""
    if not schedule_in.spec.strip():
        raise ValueError("a schedule needs a cron expression or an interval")
    return insert_row(session, Schedule.model_validate(schedule_in),
                      conflict="the schedule refers to a missing workspace")


@read_only
def get_schedule(*, session: Session, workspace_id: int, schedule_id: int) -> Schedule:
    schedule = session.exec(fresh(select(Schedule).where(
        Schedule.workspace_id == workspace_id, Schedule.id == schedule_id))).one_or_none()
    if schedule is None:
        raise NotFound(f"no schedule {schedule_id} in this workspace")
    return schedule


@read_only
def list_schedules(*, session: Session, workspace_id: int | None = None,
                   enabled_only: bool = True) -> list[Schedule]:
    """Schedules of one workspace (or of all, for the scheduler at start-up), oldest first."""
    query = select(Schedule)
    if workspace_id is not None:
        query = query.where(Schedule.workspace_id == workspace_id)
    if enabled_only:
        query = query.where(Schedule.enabled.is_(True))
    return list(session.exec(fresh(query.order_by(Schedule.id))).all())


def disable_schedule(*, session: Session, workspace_id: int, schedule_id: int) -> Schedule:
    """Stop a schedule (kept for the record); raises `NotFound`."""
    begin_immediate(session)
    schedule = get_schedule(session=session, workspace_id=workspace_id, schedule_id=schedule_id)
    schedule.enabled = False
    session.add(schedule)
    session.commit()
    session.refresh(schedule)
    return schedule


def mark_schedule_run(*, session: Session, schedule_id: int, at: datetime | None = None) -> None:
    """Remember when a schedule last fired."""
    begin_immediate(session)
    session.execute(sa.update(Schedule).where(Schedule.id == schedule_id)
                    .values(last_run_at=at or utcnow())
                    .execution_options(synchronize_session=False))
    session.commit()


def record_feedback(*, session: Session, feedback_in: FeedbackCreate) -> Feedback:
    """Store a user's verdict on an answer (a job, a Slack message, or both)."""
    if feedback_in.job_id is None and feedback_in.message_ts is None:
        raise ValueError("feedback needs a job id or a message ts")
    return insert_row(session, Feedback.model_validate(feedback_in),
                      conflict="the feedback refers to a missing workspace or job")


@read_only
def list_feedback(*, session: Session, workspace_id: int, job_id: int | None = None,
                  limit: int = 100) -> list[Feedback]:
    """The workspace's feedback (on one job when given), newest first."""
    query = select(Feedback).where(Feedback.workspace_id == workspace_id)
    if job_id is not None:
        query = query.where(Feedback.job_id == job_id)
    query = query.order_by(Feedback.id.desc()).limit(limit)
    return list(session.exec(fresh(query)).all())


def record_audit(*, session: Session, entry_in: AuditEntryCreate) -> AuditEntry:
    """Append to the workspace's audit log (who did what to what)."""
    return insert_row(session, AuditEntry.model_validate(entry_in),
                      conflict="the audit entry refers to a missing workspace")


@read_only
def list_audit(*, session: Session, workspace_id: int, action: str | None = None,
               actor: str | None = None, limit: int = 100) -> list[AuditEntry]:
    """The workspace's audit log, newest first, optionally of one action or actor."""
    query = select(AuditEntry).where(AuditEntry.workspace_id == workspace_id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    query = query.order_by(AuditEntry.id.desc()).limit(limit)
    return list(session.exec(fresh(query)).all())
