import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from storage import queue
from storage.columns import utcnow
from storage.db import session_scope
from storage.errors import Conflict, NotFound
from storage.retry import RetryPolicy
from storage.tables import DEFAULT_PRIORITY, Job, JobCreate

IMMEDIATE = RetryPolicy(max_attempts=3, base_delay=0, max_delay=0)


def add(session, workspace, kind="noop", **fields) -> Job:
    return queue.enqueue(session=session, job_in=JobCreate(
        workspace_id=workspace.id, kind=kind, **fields))


def age_heartbeat(session, job_id, seconds):
    session.execute(sa.update(Job).where(Job.id == job_id)
                    .values(heartbeat_at=utcnow() - timedelta(seconds=seconds)))
    session.commit()


def test_enqueue_fills_defaults_and_routing(session, workspace):
    job = add(session, workspace, "classify", params={"texts": ["hi"]}, channel_id="C1",
              user_id="U1", thread_ts="1.2", response_url="https://hooks.example/x")
    assert job.id and job.status == "todo" and job.attempts == 0 and job.max_attempts == 3
    assert job.priority == DEFAULT_PRIORITY
    assert job.params == {"texts": ["hi"]} and job.progress == {} and job.result is None
    assert job.created_at.tzinfo is not None and job.run_after <= utcnow() + timedelta(seconds=5)
    assert (job.channel_id, job.user_id, job.thread_ts) == ("C1", "U1", "1.2")
    assert set(job.to_json()) == {"id", "kind", "status", "attempts", "progress", "error",
                                  "created"}
    assert job.to_json()["status"] == "todo"
    queue.set_status_message(session=session, job_id=job.id, status_ts="9.9")
    assert queue.get_job(session=session, job_id=job.id).status_ts == "9.9"


def test_claim_takes_priority_then_age(session, workspace):
    finetune = add(session, workspace, "finetune", priority=20)
    evaluate = add(session, workspace, "evaluate", priority=10)
    chat1 = add(session, workspace, "chat", priority=0)
    chat2 = add(session, workspace, "classify", priority=0)
    order = [queue.claim(session=session, worker_id="w").id for _ in range(4)]
    assert order == [chat1.id, chat2.id, evaluate.id, finetune.id]
    assert queue.claim(session=session, worker_id="w") is None


def test_claim_marks_the_job_doing(session, workspace):
    job = add(session, workspace)
    seq = job.change_seq
    claimed = queue.claim(session=session, worker_id="gpu-1")
    assert claimed.id == job.id and claimed.status == "doing" and claimed.worker_id == "gpu-1"
    assert claimed.attempts == 1 and claimed.started_at and claimed.heartbeat_at
    assert claimed.change_seq > seq


def test_claim_filters_and_prefers_kinds(session, workspace):
    chat = add(session, workspace, "chat")
    finetune = add(session, workspace, "finetune")
    report = add(session, workspace, "report")
    assert queue.claim(session=session, worker_id="w", kinds=[]) is None
    assert queue.claim(session=session, worker_id="w", kinds=["report"]).id == report.id
    gpu = queue.claim(session=session, worker_id="gpu", prefer_kinds=["finetune"])
    assert gpu.id == finetune.id
    assert queue.claim(session=session, worker_id="w", kinds=["finetune"]) is None
    assert queue.claim(session=session, worker_id="w").id == chat.id


def test_run_after_delays_a_job(session, workspace):
    add(session, workspace, run_after=utcnow() + timedelta(hours=1))
    assert queue.claim(session=session, worker_id="w") is None


def test_same_idempotency_key_gives_one_job(session, workspace, other_workspace):
    first = add(session, workspace, idempotency_key="slack-event-Ev1")
    again = add(session, workspace, idempotency_key="slack-event-Ev1")
    assert again.id == first.id
    assert len(queue.list_jobs(session=session)) == 1
    with pytest.raises(Conflict):
        add(session, other_workspace, idempotency_key="slack-event-Ev1")


def test_same_idempotency_key_from_two_threads_gives_one_job(engine, workspace):
    for round_ in range(5):
        barrier = threading.Barrier(2)
        ids: list[int] = []

        def enqueue_once(barrier=barrier, ids=ids, key=f"race-{round_}"):
            with session_scope(engine) as session:
                barrier.wait()
                ids.append(add(session, workspace, idempotency_key=key).id)

        threads = [threading.Thread(target=enqueue_once) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(ids) == 2 and ids[0] == ids[1]
    with session_scope(engine) as session:
        assert len(queue.list_jobs(session=session)) == 5


def test_heartbeat_and_progress(session, workspace):
    job = add(session, workspace)
    queue.claim(session=session, worker_id="w")
    assert queue.heartbeat(session=session, job_id=job.id, worker_id="w") is True
    assert queue.heartbeat(session=session, job_id=job.id, worker_id="intruder") is False
    assert queue.set_progress(session=session, job_id=job.id, worker_id="w",
                              progress={"step": 3, "of": 10}) is True
    assert queue.get_job(session=session, job_id=job.id).progress == {"step": 3, "of": 10}
    assert queue.set_progress(session=session, job_id=job.id, worker_id="intruder",
                              progress={"step": 99}) is False
    assert queue.get_job(session=session, job_id=job.id).progress == {"step": 3, "of": 10}


def test_finish_records_the_result_once(session, workspace):
    job = add(session, workspace)
    queue.claim(session=session, worker_id="w")
    done = queue.finish(session=session, job_id=job.id, worker_id="w", result={"label": "x"})
    assert done.status == "succeeded" and done.result == {"label": "x"} and done.finished_at
    assert queue.finish(session=session, job_id=job.id, worker_id="w", result={}) is None
    assert queue.heartbeat(session=session, job_id=job.id, worker_id="w") is False


def test_failing_job_is_retried_per_policy_then_fails_with_its_error(session, workspace):
    boom = add(session, workspace, "boom")
    others = [add(session, workspace, "noop") for _ in range(3)]
    runs: list[tuple[int, str]] = []
    while (job := queue.claim(session=session, worker_id="w")) is not None:
        runs.append((job.id, job.kind))
        if job.kind == "boom":
            queue.fail(session=session, job_id=job.id, worker_id="w",
                       error=f"ValueError: bad input (attempt {job.attempts})", policy=IMMEDIATE)
        else:
            queue.finish(session=session, job_id=job.id, worker_id="w", result={})
    failed = queue.get_job(session=session, job_id=boom.id)
    assert failed.status == "failed" and failed.attempts == 3 and failed.finished_at
    assert failed.error == "ValueError: bad input (attempt 3)"
    assert [r for r in runs if r[1] == "boom"] == [(boom.id, "boom")] * 3
    for other in others:
        assert queue.get_job(session=session, job_id=other.id).status == "succeeded"


def test_retry_waits_for_the_backoff(session, workspace):
    job = add(session, workspace)
    queue.claim(session=session, worker_id="w")
    requeued = queue.fail(session=session, job_id=job.id, worker_id="w", error="flaky",
                          policy=RetryPolicy(max_attempts=3, base_delay=60))
    assert requeued.status == "todo" and requeued.error == "flaky"
    assert requeued.worker_id is None
    assert 50 < (requeued.run_after - utcnow()).total_seconds() <= 61
    assert queue.claim(session=session, worker_id="w") is None


def test_job_max_attempts_and_retry_false_cap_retries(session, workspace):
    once = add(session, workspace, max_attempts=1)
    queue.claim(session=session, worker_id="w")
    assert queue.fail(session=session, job_id=once.id, worker_id="w", error="e",
                      policy=IMMEDIATE).status == "failed"
    permanent = add(session, workspace)
    queue.claim(session=session, worker_id="w")
    assert queue.fail(session=session, job_id=permanent.id, worker_id="w", error="bad data",
                      policy=IMMEDIATE, retry=False).status == "failed"
    assert queue.fail(session=session, job_id=permanent.id, worker_id="w", error="x") is None


def test_stalled_job_is_requeued_and_its_old_worker_is_ignored(session, workspace):
    stalled = add(session, workspace)
    fresh = add(session, workspace)
    queue.claim(session=session, worker_id="dead")
    queue.claim(session=session, worker_id="alive")
    age_heartbeat(session, stalled.id, 120)
    assert queue.requeue_stalled(session=session, timeout_seconds=30) == [stalled.id]
    job = queue.get_job(session=session, job_id=stalled.id)
    assert job.status == "todo" and job.worker_id is None and job.attempts == 1
    assert queue.get_job(session=session, job_id=fresh.id).status == "doing"

    again = queue.claim(session=session, worker_id="other")
    assert again.id == stalled.id and again.attempts == 2
    assert queue.heartbeat(session=session, job_id=stalled.id, worker_id="dead") is False
    assert queue.finish(session=session, job_id=stalled.id, worker_id="dead") is None
    assert queue.finish(session=session, job_id=stalled.id, worker_id="other").status == \
        "succeeded"
    assert queue.requeue_stalled(session=session, timeout_seconds=30) == []


def test_stalled_job_out_of_attempts_fails(session, workspace):
    job = add(session, workspace, max_attempts=1)
    queue.claim(session=session, worker_id="w7")
    age_heartbeat(session, job.id, 120)
    assert queue.requeue_stalled(session=session, timeout_seconds=30) == [job.id]
    failed = queue.get_job(session=session, job_id=job.id)
    assert failed.status == "failed" and failed.error == "worker w7 stopped heartbeating"


def test_cancel_todo_job_at_once(session, workspace):
    job = add(session, workspace)
    cancelled = queue.request_cancel(session=session, job_id=job.id, workspace_id=workspace.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at
    assert queue.claim(session=session, worker_id="w") is None


def test_cancel_running_job_at_its_next_step(session, workspace):
    job = add(session, workspace)
    queue.claim(session=session, worker_id="w")
    asked = queue.request_cancel(session=session, job_id=job.id)
    assert asked.status == "doing" and asked.cancel_requested
    assert queue.request_cancel(session=session, job_id=job.id).cancel_requested
    assert queue.heartbeat(session=session, job_id=job.id, worker_id="w") is False
    assert queue.set_progress(session=session, job_id=job.id, worker_id="w",
                              progress={"step": 1}) is False
    stopped = queue.mark_cancelled(session=session, job_id=job.id, worker_id="w")
    assert stopped.status == "cancelled" and stopped.finished_at
    assert queue.request_cancel(session=session, job_id=job.id).status == "cancelled"


def test_cancel_finished_job_changes_nothing_and_other_workspaces_are_refused(
        session, workspace, other_workspace):
    job = add(session, workspace)
    queue.claim(session=session, worker_id="w")
    queue.finish(session=session, job_id=job.id, worker_id="w", result={"ok": 1})
    assert queue.request_cancel(session=session, job_id=job.id).status == "succeeded"
    with pytest.raises(NotFound):
        queue.request_cancel(session=session, job_id=job.id, workspace_id=other_workspace.id)
    with pytest.raises(NotFound):
        queue.request_cancel(session=session, job_id=9999)


def test_failure_of_cancel_requested_job_ends_cancelled(session, workspace):
    job = add(session, workspace)
    queue.claim(session=session, worker_id="w")
    queue.request_cancel(session=session, job_id=job.id)
    assert queue.fail(session=session, job_id=job.id, worker_id="w", error="interrupted",
                      policy=IMMEDIATE).status == "cancelled"


def test_stalled_cancel_requested_job_ends_cancelled(session, workspace):
    job = add(session, workspace)
    queue.claim(session=session, worker_id="w")
    queue.request_cancel(session=session, job_id=job.id)
    age_heartbeat(session, job.id, 120)
    assert queue.requeue_stalled(session=session, timeout_seconds=30) == [job.id]
    assert queue.get_job(session=session, job_id=job.id).status == "cancelled"


def test_release_hands_the_job_back_without_spending_an_attempt(session, workspace):
    job = add(session, workspace)
    queue.claim(session=session, worker_id="w")
    released = queue.release(session=session, job_id=job.id, worker_id="w")
    assert released.status == "todo" and released.attempts == 0 and released.worker_id is None
    assert queue.claim(session=session, worker_id="w2").attempts == 1
    queue.request_cancel(session=session, job_id=job.id)
    assert queue.release(session=session, job_id=job.id, worker_id="w2").status == "cancelled"
    assert queue.release(session=session, job_id=job.id, worker_id="w2") is None


def test_list_get_and_count_stay_in_their_workspace(session, workspace, other_workspace):
    mine = [add(session, workspace) for _ in range(3)]
    theirs = add(session, other_workspace)
    listed = queue.list_jobs(session=session, workspace_id=workspace.id)
    assert [j.id for j in listed] == [j.id for j in reversed(mine)]
    assert len(queue.list_jobs(session=session, limit=2)) == 2
    assert queue.get_job(session=session, job_id=theirs.id).id == theirs.id
    with pytest.raises(NotFound):
        queue.get_job(session=session, job_id=theirs.id, workspace_id=workspace.id)
    queue.claim(session=session, worker_id="w")
    counts = queue.count_jobs(session=session, workspace_id=workspace.id)
    assert counts == {"todo": 2, "doing": 1, "succeeded": 0, "failed": 0, "cancelled": 0}
    assert [j.id for j in queue.list_jobs(session=session, statuses=["doing"])] == [mine[0].id]


def test_changed_jobs_follow_change_order(session, workspace):
    a, b = add(session, workspace), add(session, workspace)
    mark = queue.get_job(session=session, job_id=b.id).change_seq
    queue.claim(session=session, worker_id="w")
    changed = queue.changed_jobs(session=session, after_seq=mark)
    assert [(j.id, j.status) for j in changed] == [(a.id, "doing")]


def test_enqueue_into_a_missing_workspace(session):
    with pytest.raises(NotFound, match="workspace"):
        queue.enqueue(session=session, job_in=JobCreate(workspace_id=4242, kind="x"))


def test_job_create_validates_itself():
    with pytest.raises(ValueError, match="max_attempts"):
        JobCreate(workspace_id=1, kind="x", max_attempts=0)
    with pytest.raises(ValueError, match="kind"):
        JobCreate(workspace_id=1, kind="")


def test_deleting_a_workspace_removes_its_jobs(engine, workspace):
    with Session(engine) as session:
        add(session, workspace)
        session.execute(sa.text("DELETE FROM workspaces WHERE id = :id"), {"id": workspace.id})
        session.commit()
        assert queue.list_jobs(session=session) == []


def test_a_long_lived_session_sees_other_sessions_changes(engine, workspace):
    with Session(engine, expire_on_commit=False) as watcher, \
            Session(engine, expire_on_commit=False) as worker:
        job = add(watcher, workspace)
        assert queue.get_job(session=watcher, job_id=job.id).status == "todo"
        queue.claim(session=worker, worker_id="w")
        assert queue.get_job(session=watcher, job_id=job.id).status == "doing"
        queue.finish(session=worker, job_id=job.id, worker_id="w")
        assert [j.status for j in queue.list_jobs(session=watcher)] == ["succeeded"]
