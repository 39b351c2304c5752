"""The bot's view of storage: the blocking repository functions run in a small thread pool of
their own (so a burst of requests can't starve the event loop or the reporter), and rows come
back as read models (`JobPublic`, `ModelPublic`, `DatasetPublic`, `UserPublic`...).

Any repository function runs through `run` (or `find`, which gives None for `NotFound`):

    job = await store.find(queue.get_job, job_id=12, workspace_id=ws)
    jobs = await store.run(queue.list_jobs, workspace_id=ws, limit=25)

The methods here are the calls with logic of their own: the workspace id cache, roles with
`LMOPS_ADMINS`, the audit log, enqueueing with its per-key lock, the promoted-model cache, and
data sets renamed on a name clash. One Slack team is one storage workspace.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, select

from storage import accounts, activity, datasets, model_records, queue
from storage.db import session_scope
from storage.errors import Conflict, NotFound
from storage.tables import (
    AuditEntryCreate,
    AuditEntryPublic,
    DatasetCreate,
    DatasetPublic,
    Job,
    JobCreate,
    JobPublic,
    ModelPublic,
    UserPublic,
    to_public,
)

T = TypeVar("T")
PROMOTED_TTL = 5.0
ADMINS_SOURCE = "LMOPS_ADMINS"


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

    async def _call(self, fn: Callable[[Session], T]) -> T:
        """`fn(session)` in the pool, in a session that commits on success."""
        def work() -> T:
            with session_scope(self.db) as session:
                return fn(session)

        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    async def run(self, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        """`fn(session=..., **kwargs)` (a repository function) in the pool, in a session that
        commits on success; a row comes back as its read model (`storage.tables.to_public`),
        a list of rows as a list of them, anything else as it is."""
        return await self._call(lambda s: to_public(fn(session=s, **kwargs)))

    async def find(self, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        """`run(fn, **kwargs)`, or None where `fn` raises `NotFound`."""
        def work(s: Session) -> Any:
            try:
                return to_public(fn(session=s, **kwargs))
            except NotFound:
                return None

        return await self._call(work)

    async def ping(self) -> bool:
        """True when the database answers."""
        try:
            return await self._call(lambda s: s.execute(sa.text("SELECT 1")).scalar() == 1)
        except Exception:  # noqa: BLE001 (any failure means "not healthy")
            return False

    # -- workspaces and roles -------------------------------------------------------------

    async def workspace_id(self, team_id: str) -> int:
        """The storage workspace of a Slack team (created on first use)."""
        if team_id not in self._workspaces:
            workspace = await self.run(accounts.get_or_create_workspace, team_id=team_id)
            self._workspaces[team_id] = int(workspace.id)
        return self._workspaces[team_id]

    async def role(self, workspace_id: int, user_id: str) -> str:
        """`admin` (LMOPS_ADMINS or granted), `trainer` or `user`."""
        if user_id in self.admins:
            return "admin"
        return await self.run(accounts.get_role, workspace_id=workspace_id,
                              slack_user_id=user_id)

    async def roles(self, workspace_id: int) -> list[UserPublic]:
        """Who has a role: LMOPS_ADMINS first (`source` names the setting), then the granted
        roles of everyone else."""
        granted: list[UserPublic] = await self.run(accounts.list_roles,
                                                   workspace_id=workspace_id)
        return [*(UserPublic(workspace_id=workspace_id, slack_user_id=u, role="admin",
                             source=ADMINS_SOURCE) for u in sorted(self.admins)),
                *(u for u in granted if u.slack_user_id not in self.admins)]

    async def audit(self, workspace_id: int, actor: str, action: str, target: Any = None,
                    **details: Any) -> AuditEntryPublic:
        """Append to the workspace's audit log."""
        entry = AuditEntryCreate(workspace_id=workspace_id, actor=actor, action=action,
                                 target=None if target is None else str(target), details=details)
        return await self.run(activity.record_audit, entry_in=entry)

    # -- jobs -----------------------------------------------------------------------------

    async def enqueue(self, job_in: JobCreate, *, exact: bool = True) -> tuple[JobPublic, bool]:
        """Enqueue (idempotent by `idempotency_key`: the database keeps one job per key);
        returns the job and whether it is new. Calls with one key take turns in this process,
        so "new" is exact here (across replicas two may both say new, for one job). With
        `exact=False` (the hot path of predictions) "new" is not looked up: always True."""
        def work(s: Session) -> tuple[JobPublic, bool]:
            if job_in.idempotency_key and exact:
                found = s.exec(select(Job).where(Job.idempotency_key == job_in.idempotency_key)
                               .execution_options(populate_existing=True)).one_or_none()
                if found is not None and found.workspace_id == job_in.workspace_id:
                    return to_public(found), False
            return to_public(queue.enqueue(session=s, job_in=job_in)), True

        if not job_in.idempotency_key or not exact:
            return await self._call(work)
        lock = self._key_locks.setdefault(job_in.idempotency_key, asyncio.Lock())
        async with lock:
            return await self._call(work)

    # -- models ---------------------------------------------------------------------------

    async def promoted(self, workspace_id: int, task: str) -> str | None:
        """The name of the workspace's default model for `task` (cached for `PROMOTED_TTL`
        seconds: every prediction asks; a promotion in this process takes effect at once)."""
        key = (workspace_id, task)
        cached = self._promoted.get(key)
        if cached is not None and time.monotonic() - cached[0] < PROMOTED_TTL:
            return cached[1]
        found: ModelPublic | None = await self.run(
            model_records.get_promoted_model, workspace_id=workspace_id, task=task)
        name = found.name if found else None
        self._promoted[key] = (time.monotonic(), name)
        return name

    async def promote(self, workspace_id: int, name: str) -> ModelPublic | None:
        """Make model `name` its task's default here; None when there is no such model."""
        self._promoted.clear()
        return await self.find(model_records.promote_model, workspace_id=workspace_id,
                               ref=name)

    # -- data sets ------------------------------------------------------------------------

    async def create_dataset(self, dataset_in: DatasetCreate) -> DatasetPublic:
        """Record a data set; a taken name gets `-2`, `-3`... (the same content is returned
        as it was stored before)."""
        def work(s: Session) -> DatasetPublic:
            base = dataset_in.name
            for n in range(1, 100):
                found = datasets.find_dataset_by_sha256(
                    session=s, workspace_id=dataset_in.workspace_id, sha256=dataset_in.sha256)
                if found is not None:
                    return to_public(found)
                candidate = dataset_in.model_copy(update={"name": base if n == 1 else
                                                          f"{base}-{n}"})
                try:
                    return to_public(datasets.create_dataset(session=s, dataset_in=candidate))
                except Conflict:
                    continue
            raise Conflict(f"too many data sets named {base!r}")

        return await self._call(work)
