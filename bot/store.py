"""The bot's view of storage: the blocking repository functions run in a small thread pool of
their own (so a burst of requests can't starve the event loop or the reporter), rows come back
as plain JSON-like dicts, and every call is scoped to one workspace.

One Slack team is one storage workspace; its id is cached after the first request.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, select

from storage import accounts, activity, datasets, queue, registry, reporting
from storage.db import session_scope
from storage.errors import Conflict, NotFound
from storage.tables import AuditEntryCreate, DatasetCreate, Job, JobCreate

T = TypeVar("T")
Row = dict[str, Any]
PROMOTED_TTL = 5.0


def as_dict(row: SQLModel) -> Row:
    """A row as JSON-like data (timestamps as ISO strings)."""
    data = row.model_dump(mode="json")
    if "created_at" in data:
        data.setdefault("created", data["created_at"])
    return data


class BotStore:
    """Async access to storage for the bot's listeners and reporter."""

    def __init__(self, db: sa.Engine, *, admins: Iterable[str] = (), threads: int = 4,
                 name: str = "lmops-store") -> None:
        self.db = db
        self.admins = frozenset(admins)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._workspaces: dict[str, int] = {}
        self._promoted: dict[tuple[int, str], tuple[float, str | None]] = {}
        self._key_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = \
            weakref.WeakValueDictionary()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def call(self, fn: Callable[[Session], T]) -> T:
        """Run `fn(session)` in the pool, in a session that commits on success."""
        def run() -> T:
            with session_scope(self.db) as session:
                return fn(session)

        return await asyncio.get_running_loop().run_in_executor(self._pool, run)

    async def find(self, fn: Callable[[Session], SQLModel]) -> Row | None:
        """`fn(session)`'s row as a dict, or None where it raises `NotFound`."""
        def run(s: Session) -> Row | None:
            try:
                return as_dict(fn(s))
            except NotFound:
                return None

        return await self.call(run)

    # -- workspaces and roles -------------------------------------------------------------

    async def workspace_id(self, team_id: str) -> int:
        """The storage workspace of a Slack team (created on first use)."""
        if team_id not in self._workspaces:
            workspace = await self.call(
                lambda s: accounts.get_or_create_workspace(session=s, team_id=team_id))
            self._workspaces[team_id] = int(workspace.id)
        return self._workspaces[team_id]

    async def role(self, workspace_id: int, user_id: str) -> str:
        """`admin` (LMOPS_ADMINS or granted), `trainer` or `user`."""
        if user_id in self.admins:
            return "admin"
        return await self.call(lambda s: accounts.get_role(
            session=s, workspace_id=workspace_id, slack_user_id=user_id))

    async def roles(self, workspace_id: int) -> list[Row]:
        """Who has a role, LMOPS_ADMINS first (marked with their source)."""
        granted = await self.call(lambda s: [as_dict(u) for u in accounts.list_roles(
            session=s, workspace_id=workspace_id)])
        rows = [{"user_id": u, "role": "admin", "source": "LMOPS_ADMINS"} for u in
                sorted(self.admins)]
        rows += [{"user_id": u["slack_user_id"], "role": u["role"]} for u in granted
                 if u["slack_user_id"] not in self.admins]
        return rows

    async def grant(self, workspace_id: int, user_id: str, role: str, by: str) -> None:
        await self.call(lambda s: accounts.set_role(
            session=s, workspace_id=workspace_id, slack_user_id=user_id, role=role,
            granted_by=by))

    async def revoke(self, workspace_id: int, user_id: str) -> bool:
        return await self.call(lambda s: accounts.revoke_role(
            session=s, workspace_id=workspace_id, slack_user_id=user_id))

    async def audit(self, workspace_id: int, actor: str, action: str, target: Any = None,
                    **details: Any) -> None:
        """Append to the workspace's audit log."""
        entry = AuditEntryCreate(workspace_id=workspace_id, actor=actor, action=action,
                                 target=None if target is None else str(target), details=details)
        await self.call(lambda s: activity.record_audit(session=s, entry_in=entry))

    # -- jobs -----------------------------------------------------------------------------

    async def enqueue(self, job_in: JobCreate, *, exact: bool = True) -> tuple[Row, bool]:
        """Enqueue (idempotent by `idempotency_key`: the database keeps one job per key);
        returns the job and whether it is new. Calls with one key take turns in this process,
        so "new" is exact here (across replicas two may both say new, for one job). With
        `exact=False` (the hot path of predictions) "new" is not looked up: always True."""
        def run(s: Session) -> tuple[Row, bool]:
            if job_in.idempotency_key and exact:
                found = s.exec(select(Job).where(Job.idempotency_key == job_in.idempotency_key)
                               .execution_options(populate_existing=True)).one_or_none()
                if found is not None and found.workspace_id == job_in.workspace_id:
                    return as_dict(found), False
            return as_dict(queue.enqueue(session=s, job_in=job_in)), True

        if not job_in.idempotency_key or not exact:
            return await self.call(run)
        lock = self._key_locks.setdefault(job_in.idempotency_key, asyncio.Lock())
        async with lock:
            return await self.call(run)

    async def get_job(self, job_id: int, workspace_id: int | None = None) -> Row | None:
        return await self.find(lambda s: queue.get_job(session=s, job_id=job_id,
                                                       workspace_id=workspace_id))

    async def list_jobs(self, workspace_id: int, limit: int = 25) -> list[Row]:
        return await self.call(lambda s: [as_dict(j) for j in queue.list_jobs(
            session=s, workspace_id=workspace_id, limit=limit)])

    async def unreported_jobs(self) -> list[Row]:
        """Jobs of every workspace with a Slack channel that no bot replica is reporting."""
        return await self.call(lambda s: [as_dict(j) for j in reporting.unreported_jobs(session=s)])

    async def claim_report(self, job_id: int, owner: str, lease_seconds: float) -> bool:
        return await self.call(lambda s: reporting.claim_report(
            session=s, job_id=job_id, owner=owner, lease_seconds=lease_seconds))

    async def mark_reported(self, job_id: int, owner: str) -> bool:
        return await self.call(lambda s: reporting.mark_reported(session=s, job_id=job_id,
                                                                 owner=owner))

    async def reporting_replicas(self) -> dict[str, int]:
        return await self.call(lambda s: reporting.reporting_replicas(session=s))

    async def release_reports(self, owner: str) -> int:
        return await self.call(lambda s: reporting.release_reports(session=s, owner=owner))

    async def cancel(self, job_id: int, workspace_id: int) -> Row | None:
        return await self.find(lambda s: queue.request_cancel(session=s, job_id=job_id,
                                                              workspace_id=workspace_id))

    async def set_status_ts(self, job_id: int, ts: str) -> None:
        await self.call(lambda s: queue.set_status_message(session=s, job_id=job_id,
                                                           status_ts=ts))

    async def count_jobs(self) -> dict[str, int]:
        return await self.call(lambda s: queue.count_jobs(session=s))

    async def ping(self) -> bool:
        """True when the database answers."""
        try:
            return await self.call(lambda s: s.execute(sa.text("SELECT 1")).scalar() == 1)
        except Exception:  # noqa: BLE001 (any failure means "not healthy")
            return False

    # -- models ---------------------------------------------------------------------------

    async def models(self, workspace_id: int) -> list[Row]:
        return await self.call(lambda s: [as_dict(m) for m in registry.list_models(
            session=s, workspace_id=workspace_id)])

    async def find_model(self, workspace_id: int, name: str) -> Row | None:
        def run(s: Session) -> Row | None:
            found = registry.find_model(session=s, workspace_id=workspace_id, ref=name)
            return as_dict(found) if found else None

        return await self.call(run)

    async def promoted(self, workspace_id: int, task: str) -> str | None:
        """The workspace's default model for `task` (cached for `PROMOTED_TTL` seconds: every
        prediction asks; a promotion in this process takes effect at once)."""
        key = (workspace_id, task)
        cached = self._promoted.get(key)
        if cached is not None and time.monotonic() - cached[0] < PROMOTED_TTL:
            return cached[1]

        def run(s: Session) -> str | None:
            found = registry.get_promoted_model(session=s, workspace_id=workspace_id, task=task)
            return found.name if found else None

        name = await self.call(run)
        self._promoted[key] = (time.monotonic(), name)
        return name

    async def promote(self, workspace_id: int, name: str) -> Row | None:
        self._promoted.clear()
        return await self.find(lambda s: registry.promote_model(
            session=s, workspace_id=workspace_id, ref=name))

    # -- data sets ------------------------------------------------------------------------

    async def get_dataset(self, workspace_id: int, ref: str | int) -> Row | None:
        return await self.find(lambda s: datasets.get_dataset(
            session=s, workspace_id=workspace_id, ref=ref))

    async def datasets(self, workspace_id: int) -> list[Row]:
        return await self.call(lambda s: [as_dict(d) for d in datasets.list_datasets(
            session=s, workspace_id=workspace_id)])

    async def dataset_by_sha256(self, workspace_id: int, sha256: str) -> Row | None:
        def run(s: Session) -> Row | None:
            found = datasets.find_dataset_by_sha256(session=s, workspace_id=workspace_id,
                                                    sha256=sha256)
            return as_dict(found) if found else None

        return await self.call(run)

    async def create_dataset(self, dataset_in: DatasetCreate) -> Row:
        """Record a data set; a taken name gets `-2`, `-3`... (the same content is returned
        as it was stored before)."""
        def run(s: Session) -> Row:
            base = dataset_in.name
            for n in range(1, 100):
                found = datasets.find_dataset_by_sha256(
                    session=s, workspace_id=dataset_in.workspace_id, sha256=dataset_in.sha256)
                if found is not None:
                    return as_dict(found)
                candidate = dataset_in.model_copy(update={"name": base if n == 1 else
                                                          f"{base}-{n}"})
                try:
                    return as_dict(datasets.create_dataset(session=s, dataset_in=candidate))
                except Conflict:
                    continue
            raise Conflict(f"too many data sets named {base!r}")

        return await self.call(run)
