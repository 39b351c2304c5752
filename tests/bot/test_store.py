"""`BotStore`: any repository function through `run` / `find`, in the store's own threads, with
rows converted to their read models (`JobPublic`, `ModelPublic`, `DatasetPublic`,
`UserPublic`...), and the few methods with logic of their own. SQLite, one database per test."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio

from bot.blocks import jobs_blocks
from bot.job_requests import job_view
from bot.store import BotStore
from storage import accounts, datasets, model_records, queue, reporting
from storage.db import make_engine
from storage.errors import NotFound
from storage.tables import (
    AuditEntryPublic,
    DatasetCreate,
    DatasetPublic,
    Job,
    JobCreate,
    JobPublic,
    ModelPublic,
    RegisteredModelCreate,
    UserPublic,
    Workspace,
    to_public,
)

pytestmark = pytest.mark.asyncio
ROOT = "UROOT0001"


@pytest_asyncio.fixture
async def store(db_url: str) -> AsyncIterator[BotStore]:
    db = make_engine(db_url)
    store = BotStore(db, admins=[ROOT], threads=2, name="test-store")
    yield store
    store.close()
    db.dispose()


async def _job(store: BotStore, ws: int, **fields: Any) -> JobPublic:
    values = {"kind": "chat", "params": {"data": "/x/tickets.csv"}, **fields}
    job, created = await store.enqueue(JobCreate(workspace_id=ws, **values))
    assert created
    return job


async def test_run_converts_rows_lists_and_passes_other_values(store):
    ws = await store.workspace_id("T1")
    job = await _job(store, ws, channel_id="C1")
    assert isinstance(job, JobPublic) and not isinstance(job, Job)
    found = await store.run(queue.get_job, job_id=job.id, workspace_id=ws)
    assert isinstance(found, JobPublic)
    assert (found.id, found.status, found.channel_id) == (job.id, "todo", "C1")
    assert isinstance(found.created_at, datetime) and found.created_at.tzinfo is not None
    assert found.params == {"data": "/x/tickets.csv"} and found.progress == {}
    await _job(store, ws)
    listed = await store.run(queue.list_jobs, workspace_id=ws)
    assert [type(j) for j in listed] == [JobPublic, JobPublic]
    assert [j.id for j in listed] == [job.id + 1, job.id]
    # counts, flags and "nothing" come back as they are
    assert (await store.run(queue.count_jobs))["todo"] == 2
    assert await store.run(reporting.claim_report, job_id=job.id, owner="r1",
                           lease_seconds=30) is True
    assert await store.run(model_records.find_model, workspace_id=ws, ref="nope") is None
    assert await store.run(accounts.get_role, workspace_id=ws, slack_user_id="U1") == "user"


async def test_find_is_none_where_the_repository_raises_not_found(store):
    ws = await store.workspace_id("T1")
    other = await store.workspace_id("T2")
    job = await _job(store, ws)
    assert await store.find(queue.get_job, job_id=job.id + 100) is None
    assert await store.find(queue.get_job, job_id=job.id, workspace_id=other) is None
    assert (await store.find(queue.get_job, job_id=job.id)).id == job.id
    assert await store.find(datasets.get_dataset, workspace_id=ws, ref="missing") is None
    with pytest.raises(NotFound):
        await store.run(queue.get_job, job_id=job.id + 100)


async def test_calls_run_off_the_event_loop_in_the_stores_threads(store):
    loop_thread = threading.current_thread().name
    seen: list[str] = []

    def slow(*, session: Any) -> str:
        seen.append(threading.current_thread().name)
        threading.Event().wait(0.3)  # blocking, as a slow database would be
        return "done"

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        assert await store.run(slow) == "done"
    finally:
        task.cancel()
    assert seen and seen[0].startswith("test-store") and seen[0] != loop_thread
    assert ticks >= 10  # the loop kept running while the call blocked


async def test_job_json_for_the_blocks(store):
    ws = await store.workspace_id("T1")
    job = await _job(store, ws, user_id="U1")
    data = job.to_json()
    assert data["created"] == data["created_at"] == job.created_at.isoformat().replace(
        "+00:00", "Z")
    assert data["id"] == job.id and data["params"] == {"data": "/x/tickets.csv"}
    view = job_view(job)
    assert view["params"] == {"data": "/x/tickets.csv", "dataset": "tickets"}
    assert job.params == {"data": "/x/tickets.csv"}  # the job itself is left alone
    assert "#" + str(job.id) in str(jobs_blocks([view]))
    # the `lmops jobs --json` contract is the table's, unchanged
    row = Job(**job.model_dump())
    assert set(row.to_json()) == {"id", "kind", "status", "attempts", "progress", "error",
                                  "created"}


async def test_enqueue_is_idempotent_by_key(store):
    ws = await store.workspace_id("T1")
    job_in = JobCreate(workspace_id=ws, kind="chat", idempotency_key="k1")
    (first, new), (again, new_again) = await asyncio.gather(store.enqueue(job_in),
                                                            store.enqueue(job_in))
    assert isinstance(first, JobPublic) and first.id == again.id
    assert sorted([new, new_again]) == [False, True]


async def test_roles_with_lmops_admins_first(store):
    ws = await store.workspace_id("T1")
    await store.run(accounts.set_role, workspace_id=ws, slack_user_id="UALICE", role="trainer",
                    granted_by=ROOT)
    await store.run(accounts.set_role, workspace_id=ws, slack_user_id=ROOT, role="trainer")
    roles = await store.roles(ws)
    assert all(isinstance(u, UserPublic) for u in roles)
    assert [(u.slack_user_id, u.role, u.source) for u in roles] == [
        (ROOT, "admin", "LMOPS_ADMINS"), ("UALICE", "trainer", None)]
    assert roles[1].to_json()["user_id"] == "UALICE" and roles[1].granted_by == ROOT
    assert await store.role(ws, ROOT) == "admin"
    assert await store.role(ws, "UALICE") == "trainer"


async def test_models_promote_and_the_promoted_cache(store):
    ws = await store.workspace_id("T1")
    model_in = RegisteredModelCreate(workspace_id=ws, name="tickets-v1", task="classify",
                                     path="/m/tickets-v1")
    made = await store.run(model_records.register_model, model_in=model_in)
    assert isinstance(made, ModelPublic) and not made.promoted
    assert await store.promoted(ws, "classify") is None
    promoted = await store.promote(ws, "tickets-v1")
    assert isinstance(promoted, ModelPublic) and promoted.promoted
    assert promoted.to_json()["promoted"] is True
    assert await store.promoted(ws, "classify") == "tickets-v1"  # the cache was cleared
    assert await store.promote(ws, "nope") is None
    (listed,) = await store.run(model_records.list_models, workspace_id=ws)
    assert isinstance(listed, ModelPublic) and listed.promoted_for == "classify"


async def test_create_dataset_renames_and_finds_the_same_content(store, tmp_path):
    ws = await store.workspace_id("T1")

    def dataset_in(sha256: str) -> DatasetCreate:
        return DatasetCreate(workspace_id=ws, name="tickets", file_name="tickets.csv",
                             sha256=sha256, stored_path=str(tmp_path / sha256), task="classify",
                             validation_report={"n": 4})

    first = await store.create_dataset(dataset_in("a" * 64))
    second = await store.create_dataset(dataset_in("b" * 64))
    same = await store.create_dataset(dataset_in("a" * 64))
    assert all(isinstance(d, DatasetPublic) for d in (first, second, same))
    assert (first.name, second.name, same.id) == ("tickets", "tickets-2", first.id)
    assert first.validation_report == {"n": 4} and first.to_json()["created"]
    found = await store.run(datasets.find_dataset_by_sha256, workspace_id=ws,
                            sha256="b" * 64)
    assert found.id == second.id and found.stored_path == second.stored_path


async def test_audit_returns_the_entry(store):
    ws = await store.workspace_id("T1")
    entry = await store.audit(ws, "U1", "job.cancel", 12, kind="chat")
    assert isinstance(entry, AuditEntryPublic)
    assert (entry.target, entry.details, entry.at.tzinfo) == ("12", {"kind": "chat"}, UTC)


async def test_to_public_leaves_rows_without_a_read_model_alone():
    workspace = Workspace(id=1, team_id="T1")
    assert to_public(workspace) is workspace
    assert to_public((None, 3, "x")) == (None, 3, "x")
    assert to_public([]) == []
