"""initial schema: workspaces, users, datasets, jobs, models, evaluation runs, schedules,
feedback, audit log

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Written from `alembic revision --autogenerate` and tidied by hand;
`tests/storage/test_migrations.py` checks that it matches the models (autogenerate's compare
finds no difference).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), primary_key=True)


def _workspace() -> sa.Column:
    return sa.Column("workspace_id", sa.Integer(), sa.ForeignKey(
        "workspaces.id", ondelete="CASCADE"), nullable=False)


def _ref(name: str, table: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), sa.ForeignKey(f"{table}.id", ondelete="SET NULL"),
                     nullable=True)


def _text(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(), nullable=nullable)


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.JSON(), nullable=nullable)


def _index(table: str, *columns: str, name: str | None = None) -> None:
    op.create_index(name or f"ix_{table}_{'_'.join(columns)}", table, list(columns))


def upgrade() -> None:
    op.create_table(
        "workspaces",
        _id(),
        _text("team_id"),
        _text("name"),
        _time("created_at"),
        sa.UniqueConstraint("team_id"),
    )
    op.create_table(
        "users",
        _id(),
        _workspace(),
        _text("slack_user_id"),
        _text("role"),
        _text("granted_by", True),
        _time("updated_at"),
        sa.UniqueConstraint("workspace_id", "slack_user_id"),
        sa.CheckConstraint("role IN ('admin', 'trainer', 'user')", name="role"),
    )
    _index("users", "workspace_id")
    op.create_table(
        "datasets",
        _id(),
        _workspace(),
        _text("name"),
        _text("file_name"),
        _text("sha256"),
        _text("stored_path"),
        _text("task"),
        sa.Column("n_rows", sa.Integer(), nullable=True),
        _json("columns"),
        _json("validation_report"),
        _text("uploader", True),
        _time("created_at"),
        sa.UniqueConstraint("workspace_id", "name"),
    )
    _index("datasets", "workspace_id")
    op.create_table(
        "jobs",
        _id(),
        _workspace(),
        _text("kind"),
        _json("params"),
        _text("status"),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        _text("idempotency_key", True),
        _text("worker_id", True),
        _time("heartbeat_at", True),
        _time("run_after"),
        _json("progress"),
        _json("result", True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        _time("created_at"),
        _time("started_at", True),
        _time("finished_at", True),
        _time("updated_at"),
        sa.Column("change_seq", sa.Integer(), nullable=False),
        *(_text(name, True) for name in (
            "team_id", "channel_id", "user_id", "thread_ts", "status_ts", "response_url")),
        sa.UniqueConstraint("idempotency_key"),
        sa.CheckConstraint(
            "status IN ('todo', 'doing', 'succeeded', 'failed', 'cancelled')", name="status"),
    )
    _index("jobs", "status", "priority", "id", name="ix_jobs_claim")
    _index("jobs", "kind")
    _index("jobs", "workspace_id")
    _index("jobs", "change_seq")
    op.create_table(
        "models",
        _id(),
        _workspace(),
        _text("name"),
        _text("task"),
        _text("base", True),
        _text("method", True),
        _text("path"),
        _json("labels", True),
        _json("metrics"),
        _json("params"),
        _text("creator", True),
        _ref("job_id", "jobs"),
        _text("promoted_for", True),
        _time("created_at"),
        sa.UniqueConstraint("workspace_id", "name"),
        sa.UniqueConstraint("workspace_id", "promoted_for"),
    )
    _index("models", "workspace_id")
    op.create_table(
        "evaluation_runs",
        _id(),
        _workspace(),
        _text("model_name"),
        _text("dataset_name", True),
        _ref("model_id", "models"),
        _ref("dataset_id", "datasets"),
        _ref("job_id", "jobs"),
        _json("metrics"),
        _json("plots"),
        _time("created_at"),
    )
    _index("evaluation_runs", "workspace_id")
    _index("evaluation_runs", "model_id")
    op.create_table(
        "schedules",
        _id(),
        _workspace(),
        _text("channel_id"),
        _text("kind"),
        _text("spec"),
        _json("params"),
        _text("creator", True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _time("last_run_at", True),
        _time("created_at"),
    )
    _index("schedules", "workspace_id")
    op.create_table(
        "feedback",
        _id(),
        _workspace(),
        _ref("job_id", "jobs"),
        _text("user_id"),
        _text("value"),
        _text("comment", True),
        _text("channel_id", True),
        _text("message_ts", True),
        _time("created_at"),
    )
    _index("feedback", "workspace_id")
    _index("feedback", "job_id")
    op.create_table(
        "audit_log",
        _id(),
        _workspace(),
        _text("actor"),
        _text("action"),
        _text("target", True),
        _json("details"),
        _time("at"),
    )
    _index("audit_log", "workspace_id")


def downgrade() -> None:
    for table in ("audit_log", "feedback", "schedules", "evaluation_runs", "models", "jobs",
                  "datasets", "users", "workspaces"):
        op.drop_table(table)
