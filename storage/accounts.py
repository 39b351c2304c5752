"""Workspaces (one per Slack team, `local` for the CLI) and users' roles in them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from storage._rows import fresh, read_only
from storage.columns import utcnow
from storage.db import begin_immediate, is_postgres
from storage.errors import NotFound
from storage.tables.accounts import LOCAL_TEAM_ID, ROLES, User, Workspace


def _insert(session: Session, table):
    return (postgresql.insert if is_postgres(session) else sqlite.insert)(table)


def get_or_create_workspace(*, session: Session, team_id: str, name: str = "") -> Workspace:
    """The workspace of Slack team `team_id`, created on first use (race-safe). A non-empty
    `name` that differs from the stored one replaces it (teams get renamed)."""
    if not team_id:
        raise ValueError("a workspace needs a team id")
    begin_immediate(session)
    session.execute(
        _insert(session, Workspace)
        .values(team_id=team_id, name=name, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["team_id"]))
    workspace = session.exec(select(Workspace).where(Workspace.team_id == team_id)
                             .execution_options(populate_existing=True)).one()
    if name and workspace.name != name:
        workspace.name = name
        session.add(workspace)
    session.commit()
    return workspace


def get_local_workspace(*, session: Session) -> Workspace:
    """The built-in workspace `local` that the CLI and `lmops dev` use."""
    return get_or_create_workspace(session=session, team_id=LOCAL_TEAM_ID, name=LOCAL_TEAM_ID)


@read_only
def get_workspace(*, session: Session, team_id: str) -> Workspace:
    """The workspace of Slack team `team_id`; raises `NotFound`."""
    query = select(Workspace).where(Workspace.team_id == team_id)
    workspace = session.exec(fresh(query)).one_or_none()
    if workspace is None:
        raise NotFound(f"no workspace for team {team_id!r}")
    return workspace


@read_only
def list_workspaces(*, session: Session) -> list[Workspace]:
    return list(session.exec(fresh(select(Workspace).order_by(Workspace.id))).all())


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def set_role(*, session: Session, workspace_id: int, slack_user_id: str, role: str,
             granted_by: str | None = None) -> User:
    """Give a user a role (admin, trainer or user) in a workspace, replacing the old one."""
    _check_role(role)
    begin_immediate(session)
    values = {"role": role, "granted_by": granted_by, "updated_at": utcnow()}
    session.execute(
        _insert(session, User)
        .values(workspace_id=workspace_id, slack_user_id=slack_user_id, **values)
        .on_conflict_do_update(index_elements=["workspace_id", "slack_user_id"], set_=values))
    user = session.exec(
        select(User).where(User.workspace_id == workspace_id, User.slack_user_id == slack_user_id)
        .execution_options(populate_existing=True)).one()
    session.commit()
    return user


@read_only
def get_role(*, session: Session, workspace_id: int, slack_user_id: str) -> str:
    """The user's role in the workspace; `user` when none was granted."""
    role = session.exec(select(User.role).where(
        User.workspace_id == workspace_id, User.slack_user_id == slack_user_id)).one_or_none()
    return role or "user"


@read_only
def list_roles(*, session: Session, workspace_id: int, include_users: bool = False) -> list[User]:
    """Users with a role in the workspace (admins, then trainers); plain users only on request."""
    query = select(User).where(User.workspace_id == workspace_id)
    if not include_users:
        query = query.where(User.role != "user")
    order = sa.case({"admin": 0, "trainer": 1}, value=User.role, else_=2)
    return list(session.exec(fresh(query.order_by(order, User.slack_user_id))).all())


def revoke_role(*, session: Session, workspace_id: int, slack_user_id: str) -> bool:
    """Take a user's role away (back to `user`); False when they had none."""
    begin_immediate(session)
    result = session.execute(sa.delete(User).where(
        User.workspace_id == workspace_id, User.slack_user_id == slack_user_id))
    session.commit()
    return result.rowcount > 0
