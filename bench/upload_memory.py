"""Uploads: the bot's memory and its `/lm help` acks while a big CSV is being validated.

    .venv/bin/python bench/upload_memory.py [--rows 1000000] [--kept-rows 200000]
        [--old /tmp/old-uploads]

The bot runs in its own process (`bot.server.serve(..., worker=False)`, as in production and
bench/ack_latency.py) with the local Slack (`localslack`, in this process) as its Web API.
For each version of the code (the one given with `--old PATH`, a `git worktree add
/tmp/old-uploads <commit>` checkout, then this checkout):

1. a user shares a CSV of `--rows` rows (~7 MB for a million, 500 distinct texts,
   so nearly every row repeats an earlier one) in #general; meanwhile a signed `/lm help` goes
   out every 100 ms until the bot answers in the file's thread;
2. the same with a CSV of `--kept-rows` rows, which both versions keep (it is within the
   row limit).

After each, ten `/lm datasets` (each reads the stored validation reports).

Printed per phase: the bot process's resident memory before and its peak during the phase
(sampled every 10 ms; also the peak of its child processes, where the new code checks the
file), the ack p50/p99/max of the `/lm help` sent meanwhile, the time to the answer, the size
of the stored validation report, and the `/lm datasets` ack p50.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from localslack import ADMIN_USER_ID, GENERAL_CHANNEL_ID, LocalSlack, payloads, sign

BOT_APP = """
from bot.server import serve
from engine.settings import get_settings
serve(get_settings(), worker=False, host="127.0.0.1", log_level="warning")
"""
FORM = "application/x-www-form-urlencoded"
USER = "UBENCH001"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def make_csv(rows: int) -> bytes:
    """`rows` rows of 500 distinct texts and two labels (~7 bytes a row)."""
    return ("text,label\n" + "".join(f"r{i % 500},{i & 1}\n" for i in range(rows))).encode()


class Sampler:
    """Peak RSS of a process and, separately, of its children, every 10 ms."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self.child_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
                children = 0
                for child in self.proc.children(recursive=True):
                    try:
                        children += child.memory_info().rss
                    except psutil.Error:
                        pass
                self.child_peak = max(self.child_peak, children)
            except psutil.Error:
                return
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.slack = LocalSlack()
        self.slack.state.add_user("bench", id=USER)
        self.failed: dict[str, int] = {}

    def env(self, root: Path, home: Path, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LMOPS_"))}
        env.update(SLACK_BOT_TOKEN=self.slack.bot_token,
                   SLACK_SIGNING_SECRET=self.slack.signing_secret,
                   SLACK_API_URL=self.slack.api_url, LMOPS_HOME=str(home),
                   LMOPS_PORT=str(port), LMOPS_ADMINS=ADMIN_USER_ID,
                   PYTHONPATH=str(root), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        return env

    async def wait_up(self, url: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                try:
                    async with session.post(f"{url}/slack/events", data=b"") as resp:
                        if resp.status in (400, 401, 200):
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{url} did not come up")

    async def command(self, session: aiohttp.ClientSession, url: str, text: str) -> float:
        """One signed `/lm text`: the seconds to its HTTP answer (the ack); a request Bolt did
        not ack in time (HTTP 404 "didn't call ack()") is counted in `self.failed`."""
        ws = self.slack.state
        form = payloads.slash_command_form(
            ws, text=text, user=ADMIN_USER_ID, channel=GENERAL_CHANNEL_ID, command="/lm",
            response_url=ws.new_response_url(channel=GENERAL_CHANNEL_ID, user=ADMIN_USER_ID),
            trigger_id=payloads.new_trigger_id())
        body = urlencode(form).encode()
        headers = {"Content-Type": FORM, **sign(self.slack.signing_secret, body)}
        started = time.perf_counter()
        async with session.post(f"{url}/slack/events", data=body, headers=headers) as resp:
            await resp.read()
            if resp.status != 200:
                self.failed[text] = self.failed.get(text, 0) + 1
        return time.perf_counter() - started

    async def phase(self, label: str, pid: int, url: str, home: Path, name: str,
                    content: bytes) -> dict:
        async with aiohttp.ClientSession() as session:
            for _ in range(3):
                await self.command(session, url, "help")
            self.failed = {}
            sampler = Sampler(pid)
            started = time.perf_counter()
            sent = await asyncio.to_thread(self.slack.run_sync, self.slack.deliver.file_share(
                name, content, user=USER), 120)
            ts = sent[0].payload["event"]["ts"]
            acks: list[float] = []
            answer = None
            deadline = time.monotonic() + self.args.timeout
            while answer is None and time.monotonic() < deadline:
                acks.append(await self.command(session, url, "help"))
                await asyncio.sleep(0.1)
                replies = self.slack.state.replies(GENERAL_CHANNEL_ID, ts)[1:]
                if replies:
                    answer = time.perf_counter() - started
            sampler.stop()
            listed = [await self.command(session, url, "datasets") for _ in range(10)]
        with sqlite3.connect(home / "lmops.db") as db:
            sizes = [n for (n,) in db.execute(
                "SELECT length(validation_report) FROM datasets WHERE file_name = ?", (name,))]
        row = {"code": label, "phase": name, "base": sampler.base / 2**20,
               "peak": sampler.peak / 2**20, "children": sampler.child_peak / 2**20,
               "n": len(acks), "p50": statistics.median(acks) * 1000,
               "p99": _percentile(acks, 99) * 1000, "max": max(acks) * 1000,
               "answer": answer, "report_kb": sizes[0] / 1024 if sizes else None,
               "datasets_p50": statistics.median(listed) * 1000,
               "unacked": self.failed.get("help", 0),
               "datasets_unacked": self.failed.get("datasets", 0)}
        _print_row(row)
        return row

    async def version(self, label: str, root: Path) -> list[dict]:
        home = Path(tempfile.mkdtemp(prefix=f"lmops-upload-bench-{label}-"))
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        proc, log = _spawn_bot(root, self.env(root, home, port), home / "bot.log")
        self.slack.deliver_to = f"{url}/slack/events"
        rows = []
        try:
            await self.wait_up(url)
            rows.append(await self.phase(label, proc.pid, url, home,
                                         f"rows-{self.args.rows}.csv", make_csv(self.args.rows)))
            if self.args.kept_rows:
                rows.append(await self.phase(label, proc.pid, url, home,
                                             f"rows-{self.args.kept_rows}.csv",
                                             make_csv(self.args.kept_rows)))
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
        return rows

    async def run(self) -> list[dict]:
        self.slack.start()
        try:
            rows = []
            if self.args.old:
                rows += await self.version("old", Path(self.args.old).resolve())
            rows += await self.version("new", ROOT)
            return rows
        finally:
            self.slack.stop()


def _spawn_bot(root: Path, env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes],
                                                                         Any]:
    log = open(log_path, "wb")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen([sys.executable, "-c", BOT_APP], env=env, cwd=root, stdout=log,
                            stderr=subprocess.STDOUT)
    return proc, log


def _print_row(r: dict) -> None:
    answer = f"{r['answer']:5.1f} s" if r["answer"] is not None else "none"
    report = f"{r['report_kb']:8.1f} KB" if r["report_kb"] is not None else "(not kept)"
    print(f"{r['code']:3s} {r['phase']:16s} bot RSS {r['base']:5.0f} -> peak {r['peak']:5.0f} MB"
          f"  (children peak {r['children']:4.0f} MB)  /lm help n={r['n']:3d} p50 "
          f"{r['p50']:6.1f} ms p99 {r['p99']:6.1f} ms max {r['max']:6.1f} ms"
          f" ({r['unacked']} not acked)  answer {answer}  report {report}  "
          f"/lm datasets p50 {r['datasets_p50']:6.1f} ms ({r['datasets_unacked']}/10 not acked)",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the refused CSV")
    parser.add_argument("--kept-rows", type=int, default=200_000,
                        help="rows of the CSV both versions keep (0: skip that phase)")
    parser.add_argument("--old", help="a checkout of the code before the change, measured first")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for an answer")
    args = parser.parse_args()
    rows = asyncio.run(Bench(args).run())
    print("\n| code | file | bot RSS before MB | bot peak MB | checker peak MB | `/lm help` sent "
          "(not acked) | ack p50 ms | ack p99 ms | answer s | stored report KB | "
          "`/lm datasets` p50 ms (not acked of 10) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        answer = f"{r['answer']:.1f}" if r["answer"] is not None else "none"
        report = f"{r['report_kb']:.1f}" if r["report_kb"] is not None else "not kept"
        print(f"| {r['code']} | {r['phase']} | {r['base']:.0f} | {r['peak']:.0f} | "
              f"{r['children']:.0f} | {r['n']} ({r['unacked']}) | {r['p50']:.1f} | {r['p99']:.1f} | "
              f"{answer} | {report} | {r['datasets_p50']:.1f} "
              f"({r['datasets_unacked']}) |")


if __name__ == "__main__":
    main()
