"""job reporting: which bot replica reports a job, until when, and when it was reported

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Jobs finished before this revision count as reported, so a bot started after the upgrade does
not post their results again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("reporter_id", sa.String(), nullable=True))
        batch.add_column(sa.Column("report_lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_jobs_reported_at", ["reported_at"])
    op.execute("UPDATE jobs SET reported_at = finished_at "
               "WHERE status IN ('succeeded', 'failed', 'cancelled')")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_reported_at")
        batch.drop_column("reported_at")
        batch.drop_column("report_lease_until")
        batch.drop_column("reporter_id")
