"""The engine worker: claims jobs from the storage queue and runs them through the engine.

This is the only engine module that imports `storage`, and it never branches on a job kind:
everything it needs to know about a kind is in the kind's `JobSpec` (`engine.kinds`). A worker
runs `concurrency` general lanes plus one lane for the kinds whose spec says
`lane="predictions"`, so predictions are answered while a fine-tune runs; GPU workers claim the
kinds that prefer a GPU first. A lane that claims a job of a kind with `batching` claims up to
`batching.limit - 1` more of that kind and lets the kind answer those it can together (one
forward pass for a burst of `/lm classify`).

Each job's params are rebuilt once from the queue's JSON with the kind's `build`. Each running
job has a heartbeat thread; when the heartbeat says the job was cancelled (or taken away), or
the worker is asked to stop (SIGTERM), the job's `should_cancel` turns true and the engine stops
at its next step: a cancelled job ends `cancelled`, a job stopped by a shutdown is checkpointed
and handed back to the queue for another worker. Errors the kind calls permanent fail the job
at once; others are retried with the worker's backoff, up to the job's `max_attempts`. A
model that can't be loaded (`ModelLoadError`, such as a hub download that failed) fails its
job at once too: another try would hold a lane as long again, for the same answer.

A job of a Slack workspace gets a registry of names only (`ModelRegistry(external=False)`):
the built-ins, the workspace's models and the hub ids of `LMOPS_HUB_MODELS`, never a folder
or another hub id. Only the CLI's `local` workspace resolves folders and any hub id.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.errors import CancelledError, EngineError, ModelLoadError
from engine.kinds import JobContext, JobSpec, all_kinds, get_kind
from engine.registry import ModelRegistry, ModelSpec, hub_models
from engine.settings import Settings
from storage import queue
from storage.db import make_engine, session_scope
from storage.notify import JobWatcher
from storage.model_records import list_models, register_model
from storage.retry import RetryPolicy
from storage.tables.accounts import LOCAL_TEAM_ID, Workspace
from storage.tables.assets import RegisteredModelCreate

log = logging.getLogger(__name__)


class StorageCatalog:
    """The fine-tuned models of one workspace, recorded in the database."""

    def __init__(self, db, workspace_id: int, *, creator: str | None = None, job_id: int | None = None):
        self.db, self.workspace_id, self.creator, self.job_id = db, workspace_id, creator, job_id

    def list(self) -> list[ModelSpec]:
        with session_scope(self.db) as session:
            rows = list_models(session=session, workspace_id=self.workspace_id)
        return [ModelSpec(name=r.name, task=r.task, path=r.path, base=r.base, method=r.method,
                          labels=r.labels, metrics=r.metrics or {},
                          created=r.created_at.isoformat() if r.created_at else None) for r in rows]

    def register(self, spec: ModelSpec) -> ModelSpec:
        with session_scope(self.db) as session:
            register_model(session=session, model_in=RegisteredModelCreate(
                workspace_id=self.workspace_id, name=spec.name, task=spec.task, base=spec.base,
                method=spec.method, path=spec.path, labels=spec.labels, metrics=spec.metrics,
                creator=self.creator, job_id=self.job_id))
        return spec


@dataclass(frozen=True)
class WorkerConfig:
    kinds: tuple[str, ...] | None = None
    concurrency: int = 1
    heartbeat_interval: float = 2.0
    progress_interval: float = 2.0
    poll_interval: float = 1.0
    prediction_lane: bool = True
    batching: bool = True  # answer jobs together where their kind allows it
    prefer_gpu_kinds: bool | None = None  # None: when a CUDA device is present
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency}")
        if self.kinds is not None:
            known = all_kinds()
            unknown = [k for k in self.kinds if k not in known]
            if unknown:
                raise ValueError(f"unknown job kinds: {', '.join(unknown)} "
                                 f"(known: {', '.join(known)})")


class Worker:
    def __init__(self, settings: Settings, config: WorkerConfig | None = None, db=None) -> None:
        self.settings = settings
        self.config = config or WorkerConfig()
        self.db = db or make_engine(settings.database_url)
        self.stop = threading.Event()
        self.wake = threading.Condition()
        self.shutting_down = False
        self.jobs_done = 0
        self._local: dict[int, bool] = {}  # workspace id -> is the CLI's `local` workspace

    # ------------------------------------------------------------------ lifecycle
    def run(self, *, install_signals: bool = True) -> None:
        """Work until `stop` is set (SIGTERM/SIGINT set it when `install_signals`)."""
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.shutdown())
        watcher = JobWatcher(self.settings.database_url, lambda _event: self._notify())
        watcher.start()
        lanes = [threading.Thread(target=self._lane, args=(self.config.kinds,), daemon=True,
                                  name=f"lane-{i}") for i in range(self.config.concurrency)]
        predictions = self._prediction_kinds()
        if predictions:
            lanes.append(threading.Thread(target=self._lane, args=(predictions,), daemon=True,
                                          name="lane-predict"))
        lanes.append(threading.Thread(target=self._janitor, daemon=True, name="janitor"))
        log.info("worker %s: %d lanes, kinds %s", self.config.worker_id, len(lanes) - 1,
                 ",".join(self.config.kinds or all_kinds()))
        for t in lanes:
            t.start()
        try:
            while not self.stop.wait(0.5):
                pass
        finally:
            self._notify()
            for t in lanes:
                t.join(timeout=120)
            watcher.stop()

    def shutdown(self) -> None:
        self.shutting_down = True
        self.stop.set()
        self._notify()

    def _notify(self) -> None:
        with self.wake:
            self.wake.notify_all()

    def _prediction_kinds(self) -> tuple[str, ...] | None:
        if not self.config.prediction_lane:
            return None
        allowed = self.config.kinds or tuple(all_kinds())
        kinds = tuple(k for k in allowed if get_kind(k).lane == "predictions")
        return kinds or None

    def _prefer(self) -> list[str] | None:
        prefer = self.config.prefer_gpu_kinds
        if prefer is None:
            import torch

            prefer = torch.cuda.is_available()
        kinds = [name for name, spec in all_kinds().items() if spec.prefers_gpu]
        return kinds if prefer and kinds else None

    def _registry(self, workspace_id: int, **catalog: Any) -> ModelRegistry:
        """The models a job of this workspace may name: folders and any hub id only for the
        CLI's `local` workspace."""
        return ModelRegistry(catalog=StorageCatalog(self.db, workspace_id, **catalog),
                             external=self._is_local(workspace_id),
                             hub_models=hub_models(self.settings.lmops_hub_models))

    def _is_local(self, workspace_id: int) -> bool:
        if workspace_id not in self._local:
            try:
                with session_scope(self.db) as session:
                    row = session.get(Workspace, workspace_id)
                    team = row.team_id if row is not None else None
            except Exception:  # a database hiccup: names only, this once
                log.exception("reading workspace %s failed", workspace_id)
                return False
            self._local[workspace_id] = team == LOCAL_TEAM_ID
        return self._local[workspace_id]

    # ------------------------------------------------------------------ lanes
    def _lane(self, kinds: tuple[str, ...] | None) -> None:
        prefer = self._prefer()
        while not self.stop.is_set():
            try:
                with session_scope(self.db) as session:
                    job = queue.claim(session=session, worker_id=self.config.worker_id,
                                      kinds=list(kinds) if kinds else None, prefer_kinds=prefer)
            except Exception:  # a database hiccup must not kill the lane
                log.exception("claim failed")
                job = None
            if job is None:
                with self.wake:
                    self.wake.wait(self.config.poll_interval)
                continue
            spec = all_kinds().get(job.kind)
            if spec is not None and spec.batching is not None and self.config.batching \
                    and spec.batching.limit > 1:
                more = self._claim_more(job.kind, spec.batching.limit - 1)
                self._run_batch(spec, [job, *more])
            else:
                self.execute(job.id, job.kind, job.params, job.workspace_id, job.user_id)

    def _claim_more(self, kind: str, limit: int) -> list[Any]:
        """Up to `limit` more queued jobs of `kind`, claimed now (none on a database error)."""
        more: list[Any] = []
        try:
            while len(more) < limit:
                with session_scope(self.db) as session:
                    job = queue.claim(session=session, worker_id=self.config.worker_id,
                                      kinds=[kind])
                if job is None:
                    break
                more.append(job)
        except Exception:
            log.exception("claim failed")
        return more

    def _run_batch(self, spec: JobSpec, jobs: list[Any]) -> None:
        """Run claimed jobs of one kind: those the kind can answer together in one call."""
        by_id = {job.id: job for job in jobs}
        built: list[tuple[int, int, Any]] = []
        for job in jobs:
            try:
                built.append((job.id, job.workspace_id, spec.build(job.params)))
            except Exception as exc:  # noqa: BLE001 (bad params: retrying won't help)
                self._finish(job.id, error=f"bad job: {exc}", retry=False)
        params = {job_id: p for job_id, _, p in built}
        groups, alone = spec.batching.group(built)
        for group in groups:
            self._run_together(spec, group, [by_id[i] for i in group.job_ids])
        for job_id in alone:
            job = by_id[job_id]
            self.execute(job.id, job.kind, job.params, job.workspace_id, job.user_id,
                         params=params[job_id])

    def _run_together(self, spec: JobSpec, group: Any, jobs: list[Any]) -> None:
        """One call for the group; each job gets its own result. Should the call fail, every
        job runs again on its own, so each fails (or retries) for its own reason."""
        state = _RunState()
        beat = threading.Thread(target=self._heartbeat, args=(group.job_ids, state), daemon=True)
        beat.start()
        ctx = JobContext(settings=self.settings, job_id=group.job_ids[0],
                         registry=self._registry(group.workspace_id))
        started = time.monotonic()
        try:
            results = spec.batching.run(group, ctx)
        except Exception:  # noqa: BLE001 (the jobs are run again one by one)
            state.done.set()
            log.info("running jobs %s together failed; running them one by one", group.job_ids)
            for job in jobs:
                self.execute(job.id, job.kind, job.params, job.workspace_id, job.user_id)
            return
        state.done.set()
        for job_id, result in results.items():
            self._finish(job_id, result=result)
        log.info("jobs %s (%s) succeeded together in %.2fs", group.job_ids, spec.name,
                 time.monotonic() - started)

    def _janitor(self) -> None:
        timeout = self.settings.lmops_heartbeat_timeout
        while not self.stop.wait(max(timeout / 3, 0.2)):
            try:
                with session_scope(self.db) as session:
                    requeued = queue.requeue_stalled(session=session, timeout_seconds=timeout)
                if requeued:
                    log.warning("requeued stalled jobs %s", requeued)
                    self._notify()
            except Exception:
                log.exception("requeue of stalled jobs failed")

    # ------------------------------------------------------------------ one job
    def execute(self, job_id: int, kind_name: str, raw_params: dict[str, Any], workspace_id: int,
                user_id: str | None = None, *, params: Any = None) -> None:
        """Run one job: its params are built from the queue's JSON (unless given built)."""
        state = _RunState()
        beat = threading.Thread(target=self._heartbeat, args=([job_id], state), daemon=True)
        beat.start()
        try:
            kind = get_kind(kind_name)
            if params is None:
                params = kind.build(raw_params)
        except Exception as exc:  # unknown kind, bad params: retrying won't help
            state.done.set()
            self._finish(job_id, error=f"bad job: {exc}", retry=False)
            return
        registry = self._registry(workspace_id, creator=user_id, job_id=job_id)
        ctx = JobContext(
            settings=self.settings, registry=registry, job_id=job_id,
            progress=self._progress_writer(job_id, state),
            should_cancel=lambda: state.stop_reason is not None or self.shutting_down)
        started = time.monotonic()
        try:
            result = kind.run(params, ctx)
        except CancelledError:
            state.done.set()
            self._stopped(job_id, state)
            return
        except (*kind.permanent_errors, ModelLoadError) as exc:  # retrying won't help
            state.done.set()
            self._finish(job_id, error=str(exc), retry=False)
            return
        except Exception as exc:
            state.done.set()
            log.error("job %s failed:\n%s", job_id, traceback.format_exc())
            message = str(exc) if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
            self._finish(job_id, error=message, retry=True)
            return
        state.done.set()
        log.info("job %s (%s) succeeded in %.1fs", job_id, kind_name, time.monotonic() - started)
        self._finish(job_id, result=result)

    def _heartbeat(self, job_ids: list[int], state: _RunState) -> None:
        while not state.done.wait(self.config.heartbeat_interval):
            try:
                with session_scope(self.db) as session:
                    alive = [queue.heartbeat(session=session, job_id=job_id,
                                             worker_id=self.config.worker_id) for job_id in job_ids]
            except Exception:
                log.exception("heartbeat failed")
                continue
            if not all(alive) and state.stop_reason is None:
                state.stop_reason = "cancel"

    def _progress_writer(self, job_id: int, state: _RunState) -> Callable[[dict[str, Any]], None]:
        last = [0.0]

        def write(progress: dict[str, Any]) -> None:
            now = time.monotonic()
            final = progress.get("stage") == "stopped" or (
                progress.get("step") is not None and progress.get("step") == progress.get("total_steps"))
            if now - last[0] < self.config.progress_interval and not final:
                return
            last[0] = now
            with session_scope(self.db) as session:
                alive = queue.set_progress(session=session, job_id=job_id,
                                           worker_id=self.config.worker_id, progress=progress)
            if not alive and state.stop_reason is None:
                state.stop_reason = "cancel"

        return write

    def _stopped(self, job_id: int, state: _RunState) -> None:
        with session_scope(self.db) as session:
            if self.shutting_down and state.stop_reason is None:
                queue.release(session=session, job_id=job_id, worker_id=self.config.worker_id)
                log.info("job %s handed back to the queue (shutdown)", job_id)
            else:
                queue.mark_cancelled(session=session, job_id=job_id, worker_id=self.config.worker_id)
                log.info("job %s cancelled", job_id)

    def _finish(self, job_id: int, *, result: dict[str, Any] | None = None, error: str | None = None,
                retry: bool = False) -> None:
        with session_scope(self.db) as session:
            if error is None:
                queue.finish(session=session, job_id=job_id, worker_id=self.config.worker_id,
                             result=result or {})
            else:
                queue.fail(session=session, job_id=job_id, worker_id=self.config.worker_id,
                           error=error[:4000], policy=self.config.retry, retry=retry)
        self.jobs_done += 1


class _RunState:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.stop_reason: str | None = None
