"""One bot replica reports each job: claims, leases, the reported mark and catching up."""

from datetime import timedelta

import sqlalchemy as sa

from storage import queue, reporting
from storage.columns import utcnow
from storage.tables import Job, JobCreate


def add(session, workspace, channel="C1", **fields) -> Job:
    return queue.enqueue(session=session, job_in=JobCreate(
        workspace_id=workspace.id, kind="noop", channel_id=channel, **fields))


def run_to_end(session, job: Job) -> None:
    claimed = queue.claim(session=session, worker_id="w")
    assert claimed is not None and claimed.id == job.id
    queue.finish(session=session, job_id=job.id, worker_id="w", result={"ok": True})


def expire_claim(session, job_id: int) -> None:
    session.execute(sa.update(Job).where(Job.id == job_id)
                    .values(report_lease_until=utcnow() - timedelta(seconds=1)))
    session.commit()


def test_one_replica_holds_a_job_until_its_lease_expires(session, workspace):
    job = add(session, workspace)
    assert reporting.claim_report(session=session, job_id=job.id, owner="a")
    assert reporting.claim_report(session=session, job_id=job.id, owner="a")  # renewal
    assert not reporting.claim_report(session=session, job_id=job.id, owner="b")
    expire_claim(session, job.id)
    assert reporting.claim_report(session=session, job_id=job.id, owner="b")
    assert not reporting.claim_report(session=session, job_id=job.id, owner="a")


def test_a_reported_job_is_never_claimed_again(session, workspace):
    job = add(session, workspace)
    assert reporting.claim_report(session=session, job_id=job.id, owner="a")
    assert not reporting.mark_reported(session=session, job_id=job.id, owner="b")
    assert reporting.mark_reported(session=session, job_id=job.id, owner="a")
    assert not reporting.mark_reported(session=session, job_id=job.id, owner="a")
    for owner in ("a", "b"):
        assert not reporting.claim_report(session=session, job_id=job.id, owner=owner)
    assert reporting.unreported_jobs(session=session) == []


def test_reporting_does_not_count_as_a_change_of_the_job(session, workspace):
    job = add(session, workspace)
    seq = session.get(Job, job.id).change_seq
    reporting.claim_report(session=session, job_id=job.id, owner="a")
    reporting.mark_reported(session=session, job_id=job.id, owner="a")
    session.expire_all()
    assert session.get(Job, job.id).change_seq == seq


def test_unreported_jobs_are_the_ones_nobody_reports(session, workspace):
    active = add(session, workspace)
    finished = add(session, workspace)
    no_channel = add(session, workspace, channel=None)
    held = add(session, workspace)
    old = add(session, workspace)
    for job in (finished, old):
        session.execute(sa.update(Job).where(Job.id == job.id).values(priority=-1))
        session.commit()
        run_to_end(session, job)
    session.execute(sa.update(Job).where(Job.id == old.id)
                    .values(finished_at=utcnow() - timedelta(days=2)))
    session.commit()
    assert reporting.claim_report(session=session, job_id=held.id, owner="a")
    found = [job.id for job in reporting.unreported_jobs(session=session)]
    assert found == [active.id, finished.id]
    assert no_channel.id not in found
    expire_claim(session, held.id)
    assert held.id in [job.id for job in reporting.unreported_jobs(session=session)]


def test_releasing_hands_the_claims_over_at_once(session, workspace):
    jobs = [add(session, workspace) for _ in range(3)]
    for job in jobs:
        reporting.claim_report(session=session, job_id=job.id, owner="a")
    reporting.mark_reported(session=session, job_id=jobs[0].id, owner="a")
    assert reporting.release_reports(session=session, owner="a") == 2
    assert reporting.claim_report(session=session, job_id=jobs[1].id, owner="b")


def test_replicas_are_counted_by_team_while_their_claims_live(session, workspace):
    jobs = [add(session, workspace, team_id=team) for team in ("T1", "T1", "T1", "T2")]
    for job, owner in zip(jobs, ("a", "b", "a", "a"), strict=True):
        assert reporting.claim_report(session=session, job_id=job.id, owner=owner)
    assert reporting.reporting_replicas(session=session) == {"T1": 2, "T2": 1}
    expire_claim(session, jobs[1].id)
    reporting.mark_reported(session=session, job_id=jobs[3].id, owner="a")
    assert reporting.reporting_replicas(session=session) == {"T1": 1}
