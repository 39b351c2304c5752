"""Workspaces (one per Slack team, plus the built-in `local`) and users with their roles."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from storage.columns import Base, UTCDateTime, created_field, utcnow

LOCAL_TEAM_ID = "local"
ROLES: tuple[str, ...] = ("admin", "trainer", "user")


class WorkspaceBase(Base):
    team_id: str = Field(unique=True, description="Slack team id, or `local` for the CLI")
    name: str = ""


class WorkspaceCreate(WorkspaceBase):
    pass


class Workspace(WorkspaceBase, table=True):
    __tablename__ = "workspaces"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = created_field()


class UserBase(Base):
    slack_user_id: str
    role: str = "user"
    granted_by: str | None = None


class User(UserBase, table=True):
    """One Slack user's role in one workspace; a user without a row has the role `user`."""

    __tablename__ = "users"
    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "slack_user_id"),
        sa.CheckConstraint("role IN ('admin', 'trainer', 'user')", name="role"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspaces.id", ondelete="CASCADE", index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class UserPublic(UserBase):
    """A user's role as its readers see it. A role that comes from the bot's settings rather
    than a row (`LMOPS_ADMINS`) has no id and names that setting as its `source`."""

    workspace_id: int
    id: int | None = None
    updated_at: datetime | None = None
    source: str | None = Field(default=None, description="where a role without a row comes from")

    def to_json(self) -> dict[str, Any]:
        """Every field as JSON, with `user_id` (the Slack user id)."""
        data = self.model_dump(mode="json")
        data["user_id"] = self.slack_user_id
        return data
