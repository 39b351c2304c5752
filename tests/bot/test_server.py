"""The HTTP face of the bot (signatures, /healthz, /metrics), Socket Mode, and the import rule
(the bot never imports torch)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlencode

import aiohttp
import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.app import build_app, runtime
from bot.server import create_asgi
from localslack import LocalSlack, sign
from storage import queue
from storage.db import make_engine, session_scope

pytestmark = pytest.mark.asyncio


async def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(url, data=body,
                                                                headers=headers) as resp:
        return resp.status, await resp.text()


async def test_signatures(bot):
    url = f"{bot.served.url}/slack/events"
    body = urlencode({"command": "/lm", "text": "jobs", "team_id": "T_LOCAL",
                      "user_id": "U_ADMIN", "channel_id": "C_GENERAL"}).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    secret = bot.slack.signing_secret
    assert (await _post(url, body, form))[0] == 401  # missing
    assert (await _post(url, body, {**form, **sign("wrong-secret", body)}))[0] == 401
    stale = sign(secret, body, timestamp=int(time.time()) - 6 * 60)
    assert (await _post(url, body, {**form, **stale}))[0] == 401
    tampered = sign(secret, body)
    assert (await _post(url, body + b"&x=1", {**form, **tampered}))[0] == 401
    status, text = await _post(url, body, {**form, **sign(secret, body)})
    assert status == 200 and "No jobs yet" in text
    bot.slack.deliver.signing_secret = "forged"
    forged = await bot.slack.deliver.slash_command("classify hi")
    assert forged.status == 401 and bot.jobs() == []


async def test_healthz_and_404(bot, tmp_path):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{bot.served.url}/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["database"] is True
        async with session.get(f"{bot.served.url}/nothing") as resp:
            assert resp.status == 404
    broken = build_app(bot.settings, db=make_engine(f"sqlite:///{tmp_path}"),
                       client=bot.rt.client)  # a folder is no database
    assert await runtime(broken).store.ping() is False


async def test_metrics(bot):
    await bot.command("classify hello")
    await bot.command("jobs")
    await bot.wait_jobs(1)
    async with aiohttp.ClientSession() as session, session.get(
            f"{bot.served.url}/metrics") as resp:
        assert resp.status == 200 and resp.content_type == "text/plain"
        text = await resp.text()
    assert 'lmops_slack_requests_total{status="200",type="slash_command"} 2' in text
    assert 'lmops_slack_ack_seconds_bucket{le="+Inf",type="slash_command"} 2.0' in text
    assert 'lmops_jobs{status="todo"} 1' in text
    bot.finish(bot.claim().id, {"predictions": []})
    await bot.wait(lambda: bot.posted("No texts"))
    await bot.reporter.idle()
    text = bot.rt.metrics.render()
    assert 'lmops_job_duration_seconds_count{kind="classify",status="succeeded"} 1' in text
    assert 'lmops_reporter_slack_calls_total{method="chat.postMessage",outcome="ok"} 1' in text


async def test_socket_mode(settings_for, serving, db_url):
    async with LocalSlack() as slack:
        settings = settings_for(slack, slack_app_token=slack.app_token,
                                slack_signing_secret=None)
        app = build_app(settings, db=make_engine(db_url))
        async with serving(create_asgi(settings, app=app)) as served:
            await slack.state.async_wait_for(lambda: slack.hub.connected)
            delivery = await slack.deliver.slash_command("help")
            assert delivery.via == "socket" and delivery.status == 200
            assert "/lm: language models" in slack.state.ephemerals_for()[0].blocks[0][
                "text"]["text"]
            await slack.deliver.slash_command("classify over the socket")
            with session_scope(runtime(app).store.db) as session:
                for _ in range(100):
                    if queue.list_jobs(session=session):
                        break
                    await asyncio.sleep(0.02)
                [job] = queue.list_jobs(session=session)
            assert job.params["texts"] == ["over the socket"]
            async with aiohttp.ClientSession() as session, session.get(
                    f"{served.url}/metrics") as resp:
                text = await resp.text()
            assert 'lmops_slack_ack_seconds_count{type="slash_command"} 2' in text
            # HTTP requests can't be verified without a signing secret
            body = b"command=/lm&text=jobs"
            status, _ = await _post(f"{served.url}/slack/events", body, sign("", body))
            assert status == 401
        await slack.state.async_wait_for(lambda: not slack.hub.connected)


async def test_importing_the_bot_imports_no_torch():
    code = ("import sys, bot.app, bot.server, bot.reporter, bot.uploads; "
            "from engine.kinds import all_kinds, get_kind; "
            "get_kind('classify').build({'texts': ['x'], 'labels': ['a', 'b']}); "
            "get_kind('finetune').build({'data': 'x.csv', 'method': 'lora'}); "
            "get_kind('chat').build({'messages': [{'role': 'user', 'content': 'hi'}]}); "
            "get_kind('evaluate').build({'model': 'minilm', 'data': 'x.csv'}); "
            "all_kinds(); "
            "bot.uploads.inspect(b'text,label\\na,x\\nb,y\\n', 't.csv'); "
            "print(','.join(m for m in ('torch', 'transformers', 'peft', 'numpy', 'lmops', "
            "'engine.worker') if m in sys.modules))")
    out = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", code],
                                  capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


async def _asgi_get(asgi, path: str) -> tuple[int, bytes]:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await asgi({"type": "http", "method": "GET", "path": path, "headers": [],
                "query_string": b""}, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def test_healthz_is_503_without_a_database(settings_for, tmp_path):
    async with LocalSlack() as slack:
        settings = settings_for(slack, lmops_database_url=f"sqlite:///{tmp_path}")
        asgi = create_asgi(settings, reporter=False)
        status, body = await _asgi_get(asgi, "/healthz")
        assert status == 503 and b'"database": false' in body
        status, body = await _asgi_get(asgi, "/metrics")  # metrics without the queue depth
        assert status == 200 and b"lmops_slack_requests_total" in body
        assert b"lmops_jobs{" not in body


async def test_routes_are_starlette_routes_one_line_each(settings_for):
    async with LocalSlack() as slack:
        asgi = create_asgi(settings_for(slack), reporter=False)
        table = {r.path: r.methods for r in asgi.routes if isinstance(r, Route)}
        assert table == {"/slack/events": {"POST"}, "/healthz": {"GET", "HEAD"},
                         "/metrics": {"GET", "HEAD"}}
        asgi.routes.append(Route("/ping", lambda _request: PlainTextResponse("pong")))
        assert await _asgi_get(asgi, "/ping") == (200, b"pong")
        assert (await _asgi_get(asgi, "/slack/events"))[0] == 405  # POST only


async def test_serve_runs_the_bot_and_its_worker_child(tmp_path):
    async with LocalSlack() as slack:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        marker = tmp_path / "worker.txt"
        worker = ("import signal, sys, time, pathlib; p = pathlib.Path(sys.argv[1]); "
                  "p.write_text('started'); "
                  "signal.signal(signal.SIGTERM, lambda *a: (p.write_text('stopped'), "
                  "sys.exit(0))); time.sleep(60)")
        code = ("import sys; from bot.server import serve; from engine.settings import "
                "get_settings; serve(get_settings(), host='127.0.0.1', log_level='warning', "
                f"worker_cmd=[sys.executable, '-c', {worker!r}, {str(marker)!r}])")
        env = {**os.environ, "SLACK_BOT_TOKEN": slack.bot_token,
               "SLACK_SIGNING_SECRET": slack.signing_secret, "SLACK_API_URL": slack.api_url,
               "LMOPS_HOME": str(tmp_path), "LMOPS_PORT": str(port)}
        env.pop("SLACK_APP_TOKEN", None)
        env.pop("LMOPS_DATABASE_URL", None)
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, env=env)
        try:
            async with aiohttp.ClientSession() as session:
                for _ in range(300):
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                            if resp.status == 200 and marker.exists():
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.05)
            assert marker.read_text() == "started"
            assert (tmp_path / "lmops.db").exists()  # migrated at start-up
        finally:
            proc.terminate()
            # uvicorn ends with the signal it shut down for, once everything is stopped
            assert await asyncio.wait_for(proc.wait(), 30) in (0, -signal.SIGTERM)
        assert marker.read_text() == "stopped"
