"""The `embed` kind: `engine.embed`, `lmops embed`, and embed jobs run by a real worker."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import engine
from engine.kinds import get_kind
from engine.kinds.embed import EmbedParams


def test_engine_embed_returns_unit_vectors_in_order(settings):
    texts = ["reset my password", "I forgot my password", "the weather is lovely today"]
    vectors = engine.embed(texts, model="minilm", device="cpu", settings=settings)
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > unrelated + 0.2
    # one text, and the params object, give the same vector
    one = engine.embed("reset my password", EmbedParams(texts=("x",), device="cpu"),
                       settings=settings)
    assert np.allclose(one[0], vectors[0], atol=1e-5)


def test_engine_embed_refuses_what_is_not_an_encoder(settings):
    with pytest.raises(engine.EngineError, match="not an encoder"):
        engine.embed(["hi"], model="sentiment", settings=settings)
    with pytest.raises(TypeError, match="unexpected keyword"):
        engine.embed(["hi"], modle="minilm")
    with pytest.raises(ValueError, match="texts"):
        EmbedParams(texts=())


def test_lmops_embed_prints_text_and_vector(lmops_home):
    out = subprocess.run([sys.executable, "-m", "lmops.cli", "embed", "--json", "--device", "cpu",
                          "reset my password", "hello"], capture_output=True, text=True,
                         check=True, timeout=300)
    rows = json.loads(out.stdout)
    assert [set(r) for r in rows] == [{"text", "vector"}] * 2
    assert [r["text"] for r in rows] == ["reset my password", "hello"]
    assert abs(np.linalg.norm(rows[0]["vector"]) - 1) < 1e-4
    bad = subprocess.run([sys.executable, "-m", "lmops.cli", "embed"], capture_output=True,
                         text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert bad.returncode == 2 and "nothing to embed" in bad.stderr and "Traceback" not in bad.stderr


def test_a_worker_runs_embed_jobs(tmp_path, monkeypatch):
    from engine.settings import get_settings
    from engine.worker import Worker, WorkerConfig
    from storage import migrate, queue
    from storage.accounts import get_local_workspace
    from storage.db import make_engine, session_scope
    from storage.tables.jobs import JobCreate

    monkeypatch.setenv("LMOPS_HOME", str(tmp_path))
    settings = get_settings()
    migrate.upgrade(settings.database_url)
    db = make_engine(settings.database_url)
    spec = get_kind("embed")
    with session_scope(db) as session:
        workspace = get_local_workspace(session=session).id
        job_id = queue.enqueue(session=session, job_in=JobCreate(
            workspace_id=workspace, **spec.job_fields(EmbedParams(texts=("a", "b"),
                                                                  device="cpu")))).id
    worker = Worker(settings, WorkerConfig(prefer_gpu_kinds=False, poll_interval=0.2,
                                           heartbeat_interval=0.2), db=db)
    thread = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with session_scope(db) as session:
                job = queue.get_job(session=session, job_id=job_id)
            if job.status in ("succeeded", "failed"):
                break
            time.sleep(0.2)
    finally:
        worker.shutdown()
        thread.join(10)
    assert job.status == "succeeded", job.error
    assert job.priority == spec.priority
    assert [row["text"] for row in job.result["embeddings"]] == ["a", "b"]
    assert len(job.result["embeddings"][0]["vector"]) == 384
