"""The worker against a real queue: every job once, retries, cancel, SIGTERM hand-back, and a
SIGKILLed fine-tune that another worker resumes from its checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.settings import get_settings
from engine.worker import Worker, WorkerConfig
from storage import migrate, queue
from storage.accounts import get_local_workspace
from storage.db import make_engine, session_scope
from storage.retry import RetryPolicy
from storage.tables.jobs import JobCreate

ROWS = "\n".join(["text,label"] + [f"refund my invoice number {i},billing" for i in range(12)]
                 + [f"the app crashes on screen {i},bug" for i in range(12)]) + "\n"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LMOPS_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    settings = get_settings()
    migrate.upgrade(settings.database_url)
    return settings


def enqueue(settings, kind: str, params: dict, **extra) -> int:
    db = make_engine(settings.database_url)
    with session_scope(db) as session:
        ws = get_local_workspace(session=session).id
        return queue.enqueue(session=session, job_in=JobCreate(workspace_id=ws, kind=kind, params=params,
                                                                **extra)).id


def job(settings, job_id: int):
    with session_scope(make_engine(settings.database_url)) as session:
        return queue.get_job(session=session, job_id=job_id)


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting")


def run_worker(settings, **config) -> tuple[Worker, threading.Thread]:
    worker = Worker(settings, WorkerConfig(prefer_gpu_kinds=False, poll_interval=0.2,
                                           heartbeat_interval=0.2, progress_interval=0.1, **config))
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    return worker, thread


def test_jobs_run_once_failures_retry_then_fail_and_others_continue(home):
    ok = [enqueue(home, "noop", {}) for _ in range(20)]
    bad = enqueue(home, "noop", {"fail": True}, max_attempts=2)
    worker, thread = run_worker(home, retry=RetryPolicy(max_attempts=2, base_delay=0.1, max_delay=0.1))
    try:
        wait_for(lambda: job(home, bad).status == "failed", timeout=30)
        wait_for(lambda: all(job(home, j).status == "succeeded" for j in ok), timeout=30)
    finally:
        worker.shutdown()
        thread.join(10)
    failed = job(home, bad)
    assert failed.attempts == 2 and "asked to fail" in failed.error
    assert all(job(home, j).attempts == 1 for j in ok)


def test_bad_params_fail_at_once_with_the_reason(home):
    bad = enqueue(home, "noop", {"sleep": -1})
    worker, thread = run_worker(home)
    try:
        wait_for(lambda: job(home, bad).status == "failed", timeout=20)
    finally:
        worker.shutdown()
        thread.join(10)
    assert job(home, bad).attempts == 1 and "negative" in job(home, bad).error


def test_cancel_stops_a_running_job_at_its_next_step(home):
    long = enqueue(home, "noop", {"sleep": 30, "steps": 300})
    worker, thread = run_worker(home)
    try:
        wait_for(lambda: job(home, long).status == "doing")
        with session_scope(make_engine(home.database_url)) as session:
            queue.request_cancel(session=session, job_id=long)
        wait_for(lambda: job(home, long).status == "cancelled", timeout=10)
    finally:
        worker.shutdown()
        thread.join(10)


def test_shutdown_hands_the_running_job_back(home):
    long = enqueue(home, "noop", {"sleep": 30, "steps": 300})
    worker, thread = run_worker(home)
    wait_for(lambda: job(home, long).status == "doing")
    worker.shutdown()
    thread.join(10)
    back = job(home, long)
    assert back.status == "todo" and back.worker_id is None


def lmops_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lmops.cli", "worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_sigkilled_finetune_is_requeued_and_resumes_from_its_checkpoint(home, tmp_path):
    data = tmp_path / "tickets.csv"
    data.write_text(ROWS, encoding="utf-8")
    job_id = enqueue(home, "finetune", {"data": str(data), "max_steps": 12, "save_steps": 2,
                                        "eval_steps": 2, "batch_size": 4, "max_length": 16,
                                        "early_stopping_patience": None, "name": "killed"})
    env = {**os.environ, "LMOPS_HOME": str(home.home), "LMOPS_HEARTBEAT_TIMEOUT": "3"}
    first = lmops_worker(env)
    try:
        wait_for(lambda: (job(home, job_id).progress or {}).get("step", 0) >= 5, timeout=240, interval=0.2)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert job(home, job_id).status == "doing"  # the dead worker still holds it
    second = lmops_worker(env)
    try:
        done = wait_for(lambda: job(home, job_id).status in ("succeeded", "failed") and job(home, job_id),
                        timeout=300, interval=0.5)
    finally:
        second.terminate()
        second.wait(30)
    assert done.status == "succeeded", done.error
    assert done.attempts == 2
    assert done.result["resumed_from_step"] >= 4
    assert done.result["name"] == "killed"


def test_a_burst_of_classify_jobs_is_answered_together_each_with_its_own_texts(home, caplog):
    import logging

    import engine
    from engine.classify_params import ClassifyParams

    labels = ["positive", "negative"]
    texts = [[f"I love this product, day {i}"] if i % 2 else [f"awful service {i}", f"great {i}"]
             for i in range(12)]
    burst = [enqueue(home, "classify", {"texts": t, "labels": labels}) for t in texts]
    other = enqueue(home, "classify", {"texts": ["fine"], "labels": ["good", "bad"]})
    unknown = [enqueue(home, "classify", {"texts": ["hi"], "model": "no-such-model"}) for _ in range(2)]
    bad = enqueue(home, "classify", {"texts": "not a list"})
    caplog.set_level(logging.INFO, logger="engine.worker")
    worker, thread = run_worker(home)
    try:
        everything = [*burst, other, *unknown, bad]
        wait_for(lambda: all(job(home, j).status in ("succeeded", "failed") for j in everything))
    finally:
        worker.shutdown()
        thread.join(10)
    assert any("succeeded together" in r.message for r in caplog.records)
    alone = engine.classify([t for ts in texts for t in ts], ClassifyParams(labels=tuple(labels)),
                            settings=home)
    expected = iter(alone)
    for job_id, job_texts in zip(burst, texts, strict=True):
        done = job(home, job_id)
        assert done.status == "succeeded" and done.attempts == 1
        for prediction in done.result["predictions"]:
            reference = next(expected)
            assert prediction["text"] == reference.text and prediction["label"] == reference.label
            assert prediction["score"] == pytest.approx(reference.score, abs=1e-4)
        assert [p["text"] for p in done.result["predictions"]] == job_texts
    assert job(home, other).status == "succeeded"
    for job_id in unknown:  # their group's call failed: each failed on its own, at once
        assert job(home, job_id).status == "failed" and "no-such-model" in job(home, job_id).error
        assert job(home, job_id).attempts == 1
    assert job(home, bad).status == "failed" and "bad job" in job(home, bad).error


def test_an_early_stop_reaches_the_queue_at_once(home):
    """The worker throttles progress writes, but never holds back the report of an early
    stop: `lmops jobs --json` shows where and why the fine-tune stopped."""
    from engine.worker import _RunState

    job_id = enqueue(home, "noop", {})
    worker = Worker(home, WorkerConfig(progress_interval=60.0))
    with session_scope(worker.db) as session:
        assert queue.claim(session=session, worker_id=worker.config.worker_id).id == job_id
    write = worker._progress_writer(job_id, _RunState())
    write({"step": 11, "total_steps": 16, "stage": "train"})
    stop = {"step": 12, "total_steps": 16, "reason": "validation loss stopped improving"}
    write({"step": 12, "total_steps": 16, "stage": "stopped", "stopped_early": stop})
    assert job(home, job_id).progress["stopped_early"] == stop
    out = subprocess.run([sys.executable, "-m", "lmops.cli", "jobs", "--json"], capture_output=True,
                         text=True, check=True, env={**os.environ, "LMOPS_HOME": str(home.home)})
    import json

    (row,) = [r for r in json.loads(out.stdout) if r["id"] == job_id]
    assert row["progress"]["stopped_early"]["reason"] == "validation loss stopped improving"
