"""The bot under test, the bolt-python way: the real app served by uvicorn on port 0, the local
Slack (`localslack`) as the Web API and as the sender of signed requests, a SQLite database
per test, and a stand-in for the worker that writes progress and results through
`storage.queue` (no model runs in the bot's tests)."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pytest
import pytest_asyncio
import uvicorn
from sqlalchemy import Engine

from bot.app import build_app, runtime
from bot.reporter import Reporter
from bot.runtime import BotRuntime
from bot.server import BotASGI, create_asgi
from bot.throttle import UpdateThrottle
from engine.settings import Settings
from localslack import ADMIN_USER_ID, GENERAL_CHANNEL_ID, Delivery, LocalSlack
from storage import accounts, activity, datasets, model_records, queue
from storage.db import make_engine, session_scope
from storage.tables import DatasetCreate, RegisteredModelCreate

ALICE = "UALICE001"  # a trainer
BOB = "UBOB00001"  # a plain user
ROOT = "UROOT0001"  # an admin by LMOPS_ADMINS, as U_ADMIN
WORKER = "test-worker"


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated database, copied for each test (migrating takes a while)."""
    from storage import migrate

    path = tmp_path_factory.mktemp("db") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def db_url(tmp_path: Path, template_db: Path) -> str:
    path = tmp_path / "lmops.db"
    with sqlite3.connect(template_db) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    return f"sqlite:///{path}"


def make_settings(slack: LocalSlack, home: Path, db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": slack.bot_token, "slack_signing_secret": slack.signing_secret,
        "slack_app_token": None, "slack_api_url": slack.api_url, "lmops_home": home,
        "lmops_database_url": db_url, "lmops_admins": f"{ADMIN_USER_ID},{ROOT}"}
    values.update(overrides)
    return Settings(_env_file=None, **values)


class Served:
    """An ASGI app served by uvicorn on a free port of 127.0.0.1, on the running loop."""

    def __init__(self, asgi: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(asgi, lifespan="on", log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


@dataclass
class Harness:
    """The bot, its local Slack and its database, with helpers for tests."""

    slack: LocalSlack
    settings: Settings
    rt: BotRuntime
    reporter: Reporter
    served: Served
    db: Engine
    asgi: BotASGI
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ws(self):
        return self.slack.state

    async def command(self, text: str, *, user: str = ADMIN_USER_ID,
                      channel: str = GENERAL_CHANNEL_ID) -> Delivery:
        delivery = await self.slack.deliver.slash_command(text, user=user, channel=channel)
        assert delivery.status == 200, (delivery.status, delivery.body)
        return delivery

    def ack_text(self, delivery: Delivery) -> str:
        """The text of the ephemeral acknowledgement (its blocks' texts joined)."""
        body = delivery.json() or {}
        return " ".join(_texts(body.get("blocks") or [])) or body.get("text", "")

    def ephemeral_texts(self, user: str = ADMIN_USER_ID) -> list[str]:
        return [" ".join(_texts(e.blocks or [])) or e.text for e in self.ws.ephemerals_for(user)]

    async def wait(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        return await self.ws.async_wait_for(predicate, timeout=timeout)

    def db_call(self, fn: Callable[[Any], Any]) -> Any:
        with session_scope(self.db) as session:
            return fn(session)

    def jobs(self, **filters: Any) -> list[Any]:
        return self.db_call(lambda s: queue.list_jobs(session=s, **filters))

    def workspace_id(self, team: str | None = None) -> int:
        team = team or self.ws.team.id
        return self.db_call(lambda s: accounts.get_or_create_workspace(session=s, team_id=team)).id

    def grant(self, user: str, role: str) -> None:
        ws = self.workspace_id()
        self.db_call(lambda s: accounts.set_role(session=s, workspace_id=ws, slack_user_id=user,
                                                 role=role))

    async def wait_jobs(self, n: int = 1, **filters: Any) -> list[Any]:
        async def enough() -> list[Any]:
            while True:
                jobs = self.jobs(**filters)
                if len(jobs) >= n:
                    return jobs
                await asyncio.sleep(0.02)

        return await asyncio.wait_for(enough(), 5.0)

    def add_dataset(self, name: str, content: str = "text,label\ngood,pos\nfine,pos\nbad,neg\n"
                    "awful,neg\n", task: str = "classify", team: str | None = None) -> Any:
        """A stored data set (as an upload would leave it)."""
        ws = self.workspace_id(team)
        path = self.settings.artifacts / "datasets" / name / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        row = DatasetCreate(workspace_id=ws, name=name, file_name=path.name, sha256=name * 2,
                            stored_path=str(path.resolve()), task=task, n_rows=4)
        return self.db_call(lambda s: datasets.create_dataset(session=s, dataset_in=row))

    def add_model(self, name: str, task: str = "classify") -> Any:
        """A fine-tuned model of this workspace (as the worker registers it)."""
        ws = self.workspace_id()
        row = RegisteredModelCreate(workspace_id=ws, name=name, task=task, base="minilm",
                                    method="lora", path=f"/models/{name}", labels=["neg", "pos"])
        return self.db_call(lambda s: model_records.register_model(session=s, model_in=row))

    def audit(self, action: str | None = None) -> list[Any]:
        ws = self.workspace_id()
        return self.db_call(lambda s: activity.list_audit(session=s, workspace_id=ws,
                                                          action=action))

    # the worker's side
    def claim(self, kinds: list[str] | None = None) -> Any:
        return self.db_call(lambda s: queue.claim(session=s, worker_id=WORKER, kinds=kinds))

    def progress(self, job_id: int, progress: dict[str, Any]) -> None:
        self.db_call(lambda s: queue.set_progress(session=s, job_id=job_id, worker_id=WORKER,
                                                  progress=progress))

    def finish(self, job_id: int, result: dict[str, Any]) -> None:
        self.db_call(lambda s: queue.finish(session=s, job_id=job_id, worker_id=WORKER,
                                            result=result))

    def fail(self, job_id: int, error: str) -> None:
        self.db_call(lambda s: queue.fail(session=s, job_id=job_id, worker_id=WORKER,
                                          error=error, retry=False))

    def messages(self, channel: str = GENERAL_CHANNEL_ID) -> list[Any]:
        """Every message of the channel, thread replies included, oldest first."""
        return self.ws.thread_messages(channel)

    def posted(self, needle: str, channel: str = GENERAL_CHANNEL_ID) -> list[Any]:
        """Messages whose text or blocks contain `needle`."""
        return [m for m in self.messages(channel) if needle in message_text(m)]

    @staticmethod
    def text(message: Any) -> str:
        return message_text(message)


def _texts(blocks: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            out.append(block["text"].get("text", ""))
        for item in block.get("fields") or []:
            out.append(item.get("text", ""))
        for element in block.get("elements") or []:
            if isinstance(element, dict):
                text = element.get("text")
                out.append(text.get("text", "") if isinstance(text, dict) else str(text or ""))
    return out


def message_text(message: Any) -> str:
    """All the text of a local Slack message (its text and its blocks)."""
    return " ".join([message.text or "", *_texts(message.blocks or [])])


@pytest.fixture
def settings_for(tmp_path: Path, db_url: str) -> Callable[..., Settings]:
    """Settings for a bot against a local Slack, with this test's home and database."""
    return lambda slack, **overrides: make_settings(slack, tmp_path, db_url, **overrides)


@pytest.fixture
def serving() -> type[Served]:
    """`async with serving(asgi) as served:` runs an ASGI app with uvicorn on a free port."""
    return Served


@pytest_asyncio.fixture
async def bot(tmp_path: Path, db_url: str) -> AsyncIterator[Harness]:
    """The bot served over HTTP, with a fast throttle so tests see updates quickly."""
    async with LocalSlack() as slack:
        slack.state.add_user("alice", id=ALICE)
        slack.state.add_user("bob", id=BOB)
        settings = make_settings(slack, tmp_path, db_url)
        db = make_engine(db_url)
        app = build_app(settings, db=db)
        rt = runtime(app)
        reporter = Reporter(rt, throttle=UpdateThrottle(per_minute=50, burst=10,
                                                        min_interval=0.2), poll_interval=0.05)
        asgi = create_asgi(settings, app=app, reporter=reporter)
        async with Served(asgi) as served:
            slack.deliver_to = f"{served.url}/slack/events"
            harness = Harness(slack, settings, rt, reporter, served, db, asgi)
            harness.grant(ALICE, "trainer")
            yield harness
        db.dispose()
