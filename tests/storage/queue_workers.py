"""Worker-process bodies for the multi-process queue tests (imported by spawned children)."""

from __future__ import annotations

from sqlmodel import Session

from storage import queue
from storage.db import make_engine


def drain(url: str, worker_id: str, barrier, results) -> None:
    """Claim and finish no-op jobs until none is left; report the ids this worker ran."""
    engine = make_engine(url)
    ran: list[int] = []
    try:
        with Session(engine, expire_on_commit=False) as session:
            barrier.wait(timeout=60)
            while (job := queue.claim(session=session, worker_id=worker_id)) is not None:
                done = queue.finish(session=session, job_id=job.id, worker_id=worker_id,
                                    result={"worker": worker_id})
                assert done is not None, f"{worker_id} lost job {job.id}"
                ran.append(job.id)
        results.put((worker_id, ran, None))
    except Exception as exc:  # noqa: BLE001 - report instead of dying silently
        results.put((worker_id, ran, repr(exc)))
    finally:
        engine.dispose()
