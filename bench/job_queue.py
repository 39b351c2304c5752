"""Queue figures: enqueue-to-start latency with an idle worker, and no-op jobs per second.

    LMOPS_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/job_queue.py [--jobs 1000] [--latency-jobs 200] [--backend both]

Latency: one idle worker process waits for work the way a real one should (a `JobWatcher`:
PostgreSQL LISTEN/NOTIFY, or the SQLite poll every 0.1 s, plus a 1 s fallback poll); the
bench enqueues one job at a time, 20-60 ms apart, and measures from just before `enqueue()`
to the moment the worker's `claim()` returns it. Throughput: N jobs queued up front, then 1 or
4 worker processes claim and finish them (two commits per job) until the queue is empty.
PostgreSQL runs in a throw-away schema of LMOPS_TEST_POSTGRES_URL (or --postgres-url);
SQLite in a temporary file.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session, select

from storage import queue
from storage.accounts import get_or_create_workspace
from storage.db import make_engine
from storage.migrate import upgrade
from storage.notify import JobWatcher
from storage.tables import Job, JobCreate


def idle_worker(url: str, ready, stop) -> None:
    """Claim as soon as the watcher says a job is waiting; record when each job started."""
    engine = make_engine(url)
    wake = threading.Event()
    watcher = JobWatcher(url, lambda event: event.status == "todo" and wake.set()).start()
    with Session(engine, expire_on_commit=False) as session:
        ready.set()
        while not stop.is_set():
            job = queue.claim(session=session, worker_id="idle")
            if job is None:
                wake.wait(1.0)
                wake.clear()
                continue
            started = time.time()
            queue.finish(session=session, job_id=job.id, worker_id="idle",
                         result={"started": started})
    watcher.stop()
    engine.dispose()


def draining_worker(url: str, worker_id: str, barrier, results) -> None:
    engine = make_engine(url)
    done = 0
    with Session(engine, expire_on_commit=False) as session:
        queue.list_jobs(session=session, limit=1)  # connect before the clock starts
        barrier.wait()
        began = time.perf_counter()
        while (job := queue.claim(session=session, worker_id=worker_id)) is not None:
            queue.finish(session=session, job_id=job.id, worker_id=worker_id, result={})
            done += 1
        ended = time.perf_counter()
    engine.dispose()
    results.put((worker_id, done, began, ended))


def latency(url: str, n: int) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    worker = ctx.Process(target=idle_worker, args=(url, ready, stop))
    worker.start()
    assert ready.wait(60), "the worker did not start"
    engine = make_engine(url)
    rng = random.Random(0)
    with Session(engine, expire_on_commit=False) as session:
        workspace = get_or_create_workspace(session=session, team_id="bench", name="bench")
        ids = []
        for _ in range(n):
            time.sleep(rng.uniform(0.02, 0.06))
            t0 = time.time()
            ids.append(queue.enqueue(session=session, job_in=JobCreate(
                workspace_id=workspace.id, kind="classify", params={"t0": t0})).id)
        deadline = time.time() + 30
        while time.time() < deadline:
            jobs = session.exec(select(Job).where(Job.id.in_(ids))
                                .execution_options(populate_existing=True)).all()
            session.commit()  # end the read: SQLite would keep showing this snapshot
            if all(job.status == "succeeded" for job in jobs):
                break
            time.sleep(0.1)
    stop.set()
    worker.join(10)
    engine.dispose()
    unfinished = [(job.id, job.status) for job in jobs if job.status != "succeeded"]
    assert not unfinished, f"not run within 30 s: {unfinished[:10]} (worker exit {worker.exitcode})"
    waits = sorted((job.result["started"] - job.params["t0"]) * 1000 for job in jobs)
    return {"p50_ms": statistics.median(waits), "p99_ms": waits[int(0.99 * (len(waits) - 1))],
            "max_ms": waits[-1]}


def throughput(url: str, n: int, workers: int) -> float:
    engine = make_engine(url)
    with Session(engine) as session:
        session.execute(sa.delete(Job))
        session.commit()
        workspace = get_or_create_workspace(session=session, team_id="bench", name="bench")
        for i in range(n):
            queue.enqueue(session=session, job_in=JobCreate(
                workspace_id=workspace.id, kind="noop", params={"i": i}))
    engine.dispose()
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=draining_worker, args=(url, f"w{k}", barrier, results))
             for k in range(workers)]
    for proc in procs:
        proc.start()
    reports = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert sum(done for _, done, _, _ in reports) == n, reports
    span = max(end for *_, end in reports) - min(began for *_, began, _ in reports)
    return n / span


def enqueue_rate(url: str, n: int) -> float:
    engine = make_engine(url)
    with Session(engine) as session:
        workspace = get_or_create_workspace(session=session, team_id="bench", name="bench")
        began = time.perf_counter()
        for i in range(n):
            queue.enqueue(session=session, job_in=JobCreate(
                workspace_id=workspace.id, kind="noop", params={"i": i}))
        rate = n / (time.perf_counter() - began)
        session.execute(sa.delete(Job))
        session.commit()
    engine.dispose()
    return rate


def run(name: str, url: str, args: argparse.Namespace) -> None:
    upgrade(url)
    lat = latency(url, args.latency_jobs)
    rate = enqueue_rate(url, min(args.jobs, 500))
    one = throughput(url, args.jobs, 1)
    four = throughput(url, args.jobs, 4)
    print(f"| {name} | {lat['p50_ms']:.1f} | {lat['p99_ms']:.1f} | {lat['max_ms']:.1f} "
          f"| {rate:.0f} | {one:.0f} | {four:.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per throughput run")
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--postgres-url", default=os.environ.get("LMOPS_TEST_POSTGRES_URL"))
    args = parser.parse_args()

    print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"{args.latency_jobs} latency jobs, {args.jobs} jobs per throughput run")
    print("| backend | latency p50 ms | p99 ms | max ms | enqueue/s (1 process) "
          "| jobs/s, 1 worker | jobs/s, 4 workers |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as folder:
            run("SQLite (WAL)", f"sqlite:///{folder}/bench.db", args)
    if args.backend in ("postgres", "both"):
        if not args.postgres_url:
            print("PostgreSQL skipped: set LMOPS_TEST_POSTGRES_URL or --postgres-url")
            return
        schema = f"lmops_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(args.postgres_url, poolclass=NullPool)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        url = make_url(args.postgres_url).update_query_dict(
            {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
        try:
            run("PostgreSQL", url, args)
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            admin.dispose()


if __name__ == "__main__":
    main()
