"""The must-hold: 4 worker processes and 400 queued no-op jobs, every job runs exactly once."""

import collections
import multiprocessing

import sqlalchemy as sa
from queue_workers import drain
from sqlmodel import select

from storage.columns import utcnow
from storage.tables import Job

N_JOBS = 400
N_WORKERS = 4


def enqueue_many(session, workspace, n):
    """Queue n no-op jobs in one statement (enqueue() itself is tested elsewhere)."""
    now = utcnow()
    session.execute(sa.insert(Job), [
        {"workspace_id": workspace.id, "kind": "noop", "params": {"i": i}, "priority": 30,
         "max_attempts": 3, "status": "todo", "attempts": 0, "run_after": now, "progress": {},
         "cancel_requested": False, "created_at": now, "updated_at": now, "change_seq": 0}
        for i in range(n)])
    session.commit()


def test_four_processes_run_each_of_400_jobs_exactly_once(db_url, session, workspace):
    enqueue_many(session, workspace, N_JOBS)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(N_WORKERS)
    results = ctx.Queue()
    workers = [ctx.Process(target=drain, args=(db_url, f"w{n}", barrier, results))
               for n in range(N_WORKERS)]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0

    assert [error for _, _, error in reports if error] == []
    ran_by = {worker_id: ids for worker_id, ids, _ in reports}
    all_runs = [job_id for ids in ran_by.values() for job_id in ids]
    duplicates = [i for i, n in collections.Counter(all_runs).items() if n > 1]
    assert duplicates == []
    assert len(all_runs) == N_JOBS
    assert sum(1 for ids in ran_by.values() if ids) >= 2, f"one worker did it all: {ran_by}"

    session.expire_all()
    jobs = session.exec(select(Job)).all()
    assert len(jobs) == N_JOBS
    assert {job.status for job in jobs} == {"succeeded"}
    assert {job.attempts for job in jobs} == {1}
    owner = {job_id: worker_id for worker_id, ids in ran_by.items() for job_id in ids}
    assert all(job.result == {"worker": owner[job.id]} == {"worker": job.worker_id}
               for job in jobs)
