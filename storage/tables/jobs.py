"""The jobs table: the durable queue shared by the bot, the CLI and the workers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from storage.columns import Base, UTCDateTime, created_field, json_field, time_field, utcnow


class JobStatus(StrEnum):
    TODO = "todo"
    DOING = "doing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

# Lower runs first. Each job kind's priority is a fact of its spec (engine.kinds), which the
# enqueuer passes; storage knows no kinds.
DEFAULT_PRIORITY = 30
DEFAULT_MAX_ATTEMPTS = 3


class JobBase(Base):
    kind: str = Field(index=True)
    params: dict[str, Any] = json_field(dict)
    priority: int = DEFAULT_PRIORITY
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    idempotency_key: str | None = Field(default=None, unique=True)
    # Slack routing: where the bot's reporter posts progress and results.
    team_id: str | None = None
    channel_id: str | None = None
    user_id: str | None = None
    thread_ts: str | None = None
    status_ts: str | None = None
    response_url: str | None = None


class JobCreate(JobBase):
    """A job to enqueue; `run_after` None means now. Build one from a kind's spec
    (`JobCreate(workspace_id=..., **get_kind(kind).job_fields(params))`) so that it carries the
    kind's priority and attempts."""

    workspace_id: int
    run_after: datetime | None = None

    def model_post_init(self, context: Any) -> None:
        if not self.kind:
            raise ValueError("a job needs a kind")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")


class Job(JobBase, table=True):
    __tablename__ = "jobs"
    __table_args__ = (
        sa.Index("ix_jobs_claim", "status", "priority", "id"),
        sa.CheckConstraint(
            "status IN ('todo', 'doing', 'succeeded', 'failed', 'cancelled')", name="status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    status: str = JobStatus.TODO.value
    attempts: int = 0
    worker_id: str | None = None
    heartbeat_at: datetime | None = time_field()
    run_after: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    progress: dict[str, Any] = json_field(dict)
    result: dict[str, Any] | None = json_field(None)
    error: str | None = Field(default=None, sa_type=sa.Text)
    cancel_requested: bool = False
    created_at: datetime = created_field()
    started_at: datetime | None = time_field()
    finished_at: datetime | None = time_field()
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    # Bumped on every change, in commit order on SQLite: the cursor of the polling watcher.
    change_seq: int = Field(default=0, index=True)
    # Which bot replica posts this job's Slack messages, until when, and when the final one
    # went out (storage.reporting).
    reporter_id: str | None = None
    report_lease_until: datetime | None = time_field()
    reported_at: datetime | None = time_field(index=True)

    def to_json(self) -> dict[str, Any]:
        """The `lmops jobs --json` shape of the public contract."""
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "attempts": self.attempts,
            "progress": self.progress or {},
            "error": self.error,
            "created": self.created_at.isoformat() if self.created_at else None,
        }


class JobPublic(JobBase):
    """A job as its readers see it (the bot's reporter and listeners): every column, with
    timestamps as aware datetimes and the JSON columns as dicts."""

    id: int
    workspace_id: int
    status: str
    attempts: int = 0
    worker_id: str | None = None
    heartbeat_at: datetime | None = None
    run_after: datetime
    progress: dict[str, Any] = Field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    cancel_requested: bool = False
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime
    change_seq: int = 0
    reporter_id: str | None = None
    report_lease_until: datetime | None = None
    reported_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON (timestamps as ISO strings), and `created` (the `created_at`
        of `Job.to_json()`), the shape the bot's job blocks take."""
        data = self.model_dump(mode="json")
        data["progress"] = data.get("progress") or {}
        data["created"] = data["created_at"]
        return data
