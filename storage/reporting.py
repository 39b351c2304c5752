"""Which bot replica reports a job to Slack, and whether that is done.

Every bot replica watches job changes, but one job's messages must come from one of them. A
replica *claims* a job before it posts or updates anything: a conditional UPDATE that succeeds
when the job's report is unclaimed, its claim has expired, or the claim is the replica's own
(then it is renewed). Once the final message is out the job is marked *reported*. A replica that
dies leaves its claims to expire; `unreported_jobs` finds the jobs nobody is reporting, so a
surviving or restarted bot takes them over and posts what was missed.

None of these writes bump `change_seq`: reporting a job is not a change of the job.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from storage.db import begin_immediate
from storage.queue_sql import later, now
from storage.tables.jobs import FINAL_STATUSES, Job

DEFAULT_LEASE_SECONDS = 30.0
CATCH_UP_WINDOW = timedelta(hours=24)


def claim_report(*, session: Session, job_id: int, owner: str,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS) -> bool:
    """Claim (or renew) the right to report job `job_id` for `lease_seconds`; False when
    another replica holds an unexpired claim or the job is reported already."""
    begin_immediate(session)
    result = session.execute(
        sa.update(Job)
        .where(Job.id == job_id, Job.reported_at.is_(None),
               sa.or_(Job.reporter_id.is_(None), Job.reporter_id == owner,
                      Job.report_lease_until < now(session)))
        .values(reporter_id=owner, report_lease_until=later(session, lease_seconds))
        .execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1


def mark_reported(*, session: Session, job_id: int, owner: str) -> bool:
    """Record that `owner` posted the job's final message; False if its claim was lost."""
    begin_immediate(session)
    result = session.execute(
        sa.update(Job)
        .where(Job.id == job_id, Job.reporter_id == owner, Job.reported_at.is_(None))
        .values(reported_at=now(session), report_lease_until=None)
        .execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1


def release_reports(*, session: Session, owner: str) -> int:
    """Give up `owner`'s claims at once (a replica shutting down cleanly), so another replica
    need not wait for them to expire. Returns how many were released."""
    begin_immediate(session)
    result = session.execute(
        sa.update(Job)
        .where(Job.reporter_id == owner, Job.reported_at.is_(None))
        .values(reporter_id=None, report_lease_until=None)
        .execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount


def unreported_jobs(*, session: Session, window: timedelta = CATCH_UP_WINDOW,
                    limit: int = 500) -> Sequence[Job]:
    """Jobs with a Slack channel that nobody is reporting: not marked reported, unclaimed or
    with an expired claim, and still running or finished within `window` (older results are
    not worth a late message)."""
    final = [status.value for status in FINAL_STATUSES]
    return session.exec(
        select(Job)
        .where(Job.channel_id.is_not(None), Job.reported_at.is_(None),
               sa.or_(Job.report_lease_until.is_(None), Job.report_lease_until < now(session)),
               sa.or_(Job.status.not_in(final), Job.finished_at > later(session, -window.total_seconds())))
        .order_by(Job.id).limit(limit)).all()


def reporting_replicas(*, session: Session) -> dict[str, int]:
    """How many bot replicas hold live claims on unreported jobs, by Slack team: the replicas
    that share the team's `chat.update` budget now."""
    rows = session.execute(
        sa.select(Job.team_id, sa.func.count(sa.distinct(Job.reporter_id)))
        .where(Job.reported_at.is_(None), Job.team_id.is_not(None),
               Job.report_lease_until > now(session))
        .group_by(Job.team_id)).all()
    return {str(team): int(count) for team, count in rows}
