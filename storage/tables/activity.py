"""Schedules (recurring jobs posted to a channel), feedback on answers, and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field

from storage.columns import Base, created_field, json_field, time_field


class ScheduleBase(Base):
    channel_id: str
    kind: str = Field(description="the job kind it enqueues, e.g. sentiment_report")
    spec: str = Field(description="a cron expression or an interval such as `every 1h`")
    params: dict[str, Any] = json_field(dict)
    creator: str | None = None
    enabled: bool = True


class ScheduleCreate(ScheduleBase):
    workspace_id: int


class Schedule(ScheduleBase, table=True):
    __tablename__ = "schedules"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    last_run_at: datetime | None = time_field()
    created_at: datetime = created_field()


class FeedbackBase(Base):
    user_id: str
    value: str = Field(description="e.g. good, bad, or a corrected label")
    comment: str | None = None
    channel_id: str | None = None
    message_ts: str | None = None


class FeedbackCreate(FeedbackBase):
    workspace_id: int
    job_id: int | None = None


class Feedback(FeedbackBase, table=True):
    """What a user thought of an answer: about a job, a Slack message, or both."""

    __tablename__ = "feedback"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    job_id: int | None = Field(
        default=None, foreign_key="jobs.id", ondelete="SET NULL", index=True)
    created_at: datetime = created_field()


class AuditEntryBase(Base):
    actor: str = Field(description="Slack user id, `cli`, or `system`")
    action: str = Field(description="e.g. model.promote, role.grant, job.cancel")
    target: str | None = None
    details: dict[str, Any] = json_field(dict)


class AuditEntryCreate(AuditEntryBase):
    workspace_id: int


class AuditEntry(AuditEntryBase, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    at: datetime = created_field()


class AuditEntryPublic(AuditEntryBase):
    """An audit-log entry as its readers see it."""

    id: int
    workspace_id: int
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
