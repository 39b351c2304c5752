"""The bot's HTTP edge (issue 11, items 3 and 8): `POST /slack/events` caps the body and checks
the signature on the raw bytes before anything parses it; `/healthz` notices a database that
can't be written; the worker child of `lmops serve` holds no Slack secret; job errors posted
to Slack name no server path; `lmops serve` listens where `LMOPS_HOST` says.

Against the public surfaces: `lmops serve --no-worker` in a subprocess (its memory read from
/proc), the bot served by uvicorn with the local Slack (the harness of `tests/bot`), and signed
requests made as Slack makes them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest

from bot.server import create_asgi
from localslack import LocalSlack, sign

_spec = importlib.util.spec_from_file_location(
    "lmops_bot_harness", Path(__file__).resolve().parents[1] / "bot" / "conftest.py")
harness = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)  # the bot's test harness (its fixtures and helpers)
bot, db_url, template_db = harness.bot, harness.db_url, harness.template_db
settings_for, serving = harness.settings_for, harness.serving

ROOT = Path(__file__).resolve().parents[2]
SECRET = "edge-test-signing-secret"
HOST = "127.0.0.2"  # LMOPS_HOST of the served bot: loopback, but not 127.0.0.1
MB = 1024 * 1024
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
async_test = pytest.mark.asyncio


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """A GET over a plain socket (no client library in the way), as (status, body)."""
    host, _, rest = url.removeprefix("http://").partition("/")
    name, _, port = host.partition(":")
    with socket.create_connection((name, int(port)), timeout=timeout) as sock:
        sock.sendall(f"GET /{rest} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                     .encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


class Served:
    """`lmops serve --no-worker` on HOST, as an operator starts it."""

    def __init__(self, home: Path) -> None:
        self.port = _free_port()
        self.url = f"http://{HOST}:{self.port}"
        env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-edge-test", "SLACK_SIGNING_SECRET": SECRET,
               "SLACK_API_URL": f"http://127.0.0.1:{_free_port()}/api/", "LMOPS_HOME": str(home),
               "LMOPS_PORT": str(self.port), "LMOPS_HOST": HOST}
        for key in ("SLACK_APP_TOKEN", "LMOPS_DATABASE_URL", "LMOPS_ARTIFACTS"):
            env.pop(key, None)
        self.proc = subprocess.Popen([sys.executable, "-m", "lmops.cli", "serve", "--no-worker"],
                                     env=env, cwd=home, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(f"{self.url}/healthz", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"lmops serve did not start: {self.proc.stderr.read()!r}")
            time.sleep(0.1)

    def peak_rss_mb(self) -> float:
        """The server's peak resident memory (VmHWM), in MB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if not Path("/proc/self/status").exists():
        pytest.skip("reads the server's memory from /proc")
    server = Served(tmp_path_factory.mktemp("edge-home"))
    yield server
    server.stop()


def _big_json(size: int, piece: int = 64 * 1024) -> Iterator[bytes]:
    """A JSON document of about `size` bytes, made as it is sent (never held whole)."""
    yield b'{"type": "event_callback", "junk": "'
    for _ in range(size // piece):
        yield b"x" * piece
    yield b'"}'


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    """A response's status and body (to its Content-Length, or to the end of the stream)."""
    data = b""
    while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
               if line.lower().startswith(b"content-length:")]
    while (not lengths or len(body) < lengths[0]) and (chunk := sock.recv(65536)):
        body += chunk
    return int(head.split()[1]), body


# -- item 3: the body is capped and the signature checked before anything parses it ----------


def test_a_50_mb_unsigned_post_is_refused_at_once_unread(served: Served):
    """Content-Length says 50 MB: 413 before the body is sent, and /healthz answers meanwhile."""
    with socket.create_connection((HOST, served.port), timeout=5) as sock:
        sock.sendall(f"POST /slack/events HTTP/1.1\r\nHost: {HOST}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {50 * MB}\r\n\r\n"
                     .encode() + b'{"type": "event_callback", "junk": "' + b"x" * 4096)
        started = time.monotonic()
        sock.settimeout(3)
        status, body = _read_response(sock)  # no more of the body is ever sent
        elapsed = time.monotonic() - started
        assert status == 413 and elapsed < 2, (status, elapsed)
        assert json.loads(body) == {"error": "the body is over 512 KiB"}
        assert _get(f"{served.url}/healthz")[0] == 200  # the upload's connection is still open


@pytest.mark.parametrize("forged", [True, False], ids=["forged-signature", "unsigned"])
def test_a_50_mb_chunked_post_stops_at_the_cap_and_costs_no_memory(served: Served, forged: bool):
    """No Content-Length (chunked): with signature headers that look right the server reads
    up to the cap and answers 413; without them it answers 401 before reading any of it.
    Either way it closes the connection, its peak memory does not move, and /healthz answers
    while the client is still sending."""
    before = served.peak_rss_mb()
    answer: dict[str, object] = {}
    signature = (f"X-Slack-Request-Timestamp: {int(time.time())}\r\n"
                 f"X-Slack-Signature: v0={'0' * 64}\r\n") if forged else ""

    def upload() -> None:
        with socket.create_connection((HOST, served.port), timeout=10) as sock:
            sock.sendall(f"POST /slack/events HTTP/1.1\r\nHost: {HOST}\r\n{signature}"
                         "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                         .encode())
            sent = 0
            try:
                for piece in _big_json(50 * MB):
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                    sent += len(piece)
                sock.sendall(b"0\r\n\r\n")
            except OSError:  # the server closed the connection: it has answered
                pass
            answer["sent_mb"] = sent / MB
            try:
                answer["status"], answer["body"] = _read_response(sock)
            except OSError as exc:
                answer["status"] = repr(exc)

    thread = threading.Thread(target=upload)
    thread.start()
    health = [_get(f"{served.url}/healthz", timeout=2)[0] for _ in range(3)]
    thread.join(60)
    assert answer.get("status") == (413 if forged else 401), answer
    assert answer["sent_mb"] < 40, answer  # the server hung up instead of reading it all
    assert health == [200, 200, 200]
    assert served.peak_rss_mb() - before < 20, (before, served.peak_rss_mb())


async def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(url, data=body,
                                                                headers=headers) as resp:
        return resp.status, await resp.text()


def _one_line_json(text: str) -> dict:
    assert "\n" not in text.strip() and "Traceback" not in text, text
    return json.loads(text)


@async_test
async def test_junk_gets_400_or_401_never_a_500_and_help_still_works(bot):
    url = f"{bot.served.url}/slack/events"
    secret = bot.slack.signing_secret
    junk = b"{not json"
    for content_type in ("application/json", "application/x-www-form-urlencoded"):
        status, text = await _post(url, junk, {"Content-Type": content_type,
                                               **sign(secret, junk)})
        assert status == 400, (status, text)
        assert _one_line_json(text) == {"error": "the body is neither a form nor JSON"}
    payload = b"payload=%7Bnot+json"  # an interaction whose payload isn't JSON
    status, text = await _post(url, payload, {**FORM, **sign(secret, payload)})
    assert status == 400 and "error" in _one_line_json(text)
    nested = b"[" * 100_000 + b"]" * 100_000  # within the cap, too deep for json
    status, text = await _post(url, nested, {"Content-Type": "application/json",
                                             **sign(secret, nested)})
    assert status == 400 and "error" in _one_line_json(text)

    body = urlencode({"command": "/lm", "text": "help", "team_id": "T_LOCAL"}).encode()
    signed = sign(secret, body)
    for headers in ({**signed, "X-Slack-Request-Timestamp": "abc"},  # not a number
                    {**signed, "X-Slack-Request-Timestamp": "１２３"},  # digits, not ASCII
                    {"X-Slack-Request-Timestamp": signed["X-Slack-Request-Timestamp"]},
                    {"X-Slack-Signature": signed["X-Slack-Signature"]},
                    {}):
        status, text = await _post(url, body, {**FORM, **headers})
        assert status == 401, (headers, status, text)
        assert _one_line_json(text) == {"error": "invalid request"}
    assert bot.jobs() == []
    delivery = await bot.command("help")  # and a normal signed `/lm help` still works
    assert "/lm: language models" in bot.ack_text(delivery)


# -- item 8: /healthz notices a database it can't write to ----------------------------------


@async_test
async def test_healthz_is_degraded_when_the_database_refuses_writes(settings_for, db_url,
                                                                    serving):
    """The same database, opened read-only (as a read-only file or volume, or a PostgreSQL
    standby, would refuse writes): it answers a SELECT, so /healthz used to say ok."""
    read_only = f"sqlite:///file:{db_url.removeprefix('sqlite:///')}?mode=ro&uri=true"
    async with LocalSlack() as slack:
        for url, status, body in ((db_url, 200, {"status": "ok", "database": True}),
                                  (read_only, 503, {"status": "degraded",
                                                    "database": "read-only"})):
            settings = settings_for(slack, lmops_database_url=url)
            asgi = create_asgi(settings, reporter=False)
            async with serving(asgi) as served, aiohttp.ClientSession() as session:
                async with session.get(f"{served.url}/healthz") as resp:
                    assert (resp.status, await resp.json()) == (status, body), url
                async with session.head(f"{served.url}/healthz") as resp:
                    assert resp.status == status
                async with session.get(f"{served.url}/healthz") as resp:
                    assert resp.status == status  # the check leaves nothing behind


@async_test
async def test_healthz_says_busy_soon_when_the_write_lock_is_held(bot):
    """Another process holds SQLite's write lock: /healthz says so within a few seconds
    (not the 30 s busy timeout), and is ok again once the lock is let go."""
    holder = sqlite3.connect(bot.settings.database_url.removeprefix("sqlite:///"),
                             isolation_level=None)
    url = f"{bot.served.url}/healthz"
    try:
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert (resp.status, await resp.json()) == (503, {"status": "degraded",
                                                              "database": "busy"})
        assert time.monotonic() - started < 6
    finally:
        holder.rollback()
        holder.close()
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200


# -- item 8: the worker child of `lmops serve` holds no Slack secret ---------------------------


def test_the_worker_child_gets_no_slack_secret(tmp_path: Path):
    """`serve` (what `lmops serve` runs) with a worker that writes down its environment."""
    port, dump = _free_port(), tmp_path / "worker-env.json"
    secrets = {"SLACK_BOT_TOKEN": "xoxb-edge-secret-1", "SLACK_SIGNING_SECRET": SECRET,
               "SLACK_CLIENT_SECRET": "edge-client-secret-3", "SLACK_CLIENT_ID": "123.456",
               "SLACK_VERIFICATION_TOKEN": "edge-verification-4",
               "slack_state_secret": "edge-lowercase-5"}
    worker = ("import json, os, signal, sys, time; "
              "open(sys.argv[1], 'w').write(json.dumps(dict(os.environ))); "
              "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); time.sleep(60)")
    code = ("import sys; from bot.server import serve; from engine.settings import "
            "get_settings; serve(get_settings(), host='127.0.0.1', log_level='warning', "
            f"worker_cmd=[sys.executable, '-c', {worker!r}, {str(dump)!r}])")
    env = {**os.environ, **secrets, "SLACK_API_URL": f"http://127.0.0.1:{_free_port()}/api/",
           "LMOPS_HOME": str(tmp_path), "LMOPS_PORT": str(port)}
    for key in ("SLACK_APP_TOKEN", "LMOPS_DATABASE_URL", "LMOPS_ARTIFACTS"):
        env.pop(key, None)
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not dump.exists() or not dump.read_text().endswith("}"):
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.05)
        child = json.loads(dump.read_text())
    finally:
        proc.terminate()
        proc.wait(30)
    assert [key for key in child if key.upper().startswith("SLACK_")] == []
    leaked = [key for key, value in child.items() if any(s in value for s in secrets.values())]
    assert leaked == []
    assert child["LMOPS_HOME"] == str(tmp_path) and child["LMOPS_PORT"] == str(port)


# -- item 8: job errors posted to Slack name no server path -----------------------------------


@async_test
async def test_a_failed_jobs_message_shows_file_names_not_server_paths(bot):
    await bot.command("classify hi")
    [job] = await bot.wait_jobs(1)
    job = bot.claim()
    bot.fail(job.id, "Traceback (most recent call last):\n"
             '  File "/opt/lmops/.venv/lib/python3.11/site-packages/engine/data.py", line 9\n'
             "FileNotFoundError: [Errno 2] No such file or directory: "
             "'/home/x/.lmops/artifacts/jobs/3/data.csv' (also /tmp/lmops-1/cache/ and "
             r"C:\Users\alice\lmops\model.bin; see /lm help)")
    [message] = await bot.wait(lambda: bot.posted("failed"))
    text = bot.text(message)
    assert f"Classification #{job.id} failed*: FileNotFoundError: [Errno 2] No such file or " \
           "directory: 'data.csv' (also &lt;path&gt; and model.bin; see /lm help)" in text
    jobs = bot.ack_text(await bot.command("jobs all"))  # the job list shows the error too
    for shown in (text, jobs):
        assert "/home/" not in shown and "/tmp/" not in shown and "alice" not in shown
    assert "FileNotFoundError" in jobs


# -- item 8: `lmops serve` listens where LMOPS_HOST says ----------------------------------------


def test_lmops_serve_listens_on_lmops_host(served: Served):
    """The served bot has LMOPS_HOST=127.0.0.2: it answers there and not on 127.0.0.1 (with
    the old default of 0.0.0.0 it answered on both); `--help` names the setting."""
    assert _get(f"{served.url}/healthz")[0] == 200
    with pytest.raises(ConnectionRefusedError):
        _get(f"http://127.0.0.1:{served.port}/healthz", timeout=2)
    out = subprocess.run([sys.executable, "-m", "lmops.cli", "serve", "--help"], check=True,
                         capture_output=True, text=True).stdout
    assert "LMOPS_HOST" in out and "0.0.0.0" in out and "127.0.0.1" in out
