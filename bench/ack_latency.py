"""Slack acknowledgement latency: 50 concurrent signed `/lm classify` requests against the bot
served by uvicorn, beside a bare Bolt `AsyncApp` that only acks, served the same way (the floor).

    .venv/bin/python bench/ack_latency.py [--requests 50] [--rounds 3] [--no-worker] [--no-busy]

Every server runs in its own process (as in production): the local Slack (`localslack`,
the Web API the bot posts to) and the load generator share this process. Phases:

1. `bare`: a Bolt AsyncApp whose `/lm` listener only calls `ack()`, behind uvicorn;
2. `bot`: the lmops bot (`bot.server.serve(..., worker=False)`), no worker: acks only;
3. `bot+worker`: an `lmops worker` process too; also measures the time from sending the
   command to the prediction message reaching the local Slack (`chat.postMessage`), for
   bursts and for single requests one at a time;
4. `bot+worker, fine-tune running`: the same while the worker trains a LoRA fine-tune on a
   data set uploaded through Slack (a busy CPU, as in production with a GPU job), and the
   bare app again under that load (the floor for this phase).

Each round sends N requests at once (each a fresh signed request, unique text) and waits for
every prediction before the next round. Zero-shot labels are used (`labels=positive,negative`),
so the worker needs only the built-in `minilm` encoder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent

import aiohttp

from localslack import (
    ADMIN_USER_ID,
    GENERAL_CHANNEL_ID,
    LocalSlack,
    payloads,
    sign,
)

BARE_APP = """
import os, uvicorn
from slack_bolt.async_app import AsyncApp
from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
from slack_sdk.web.async_client import AsyncWebClient
client = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
app = AsyncApp(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"])

@app.command("/lm")
async def lm(ack):
    await ack()

uvicorn.run(AsyncSlackRequestHandler(app), host="127.0.0.1", port=int(os.environ["LMOPS_PORT"]),
            log_level="warning", access_log=False)
"""
BOT_APP = """
from bot.server import serve
from engine.settings import get_settings
serve(get_settings(), worker=False, host="127.0.0.1", log_level="warning")
"""
FORM = "application/x-www-form-urlencoded"
_TAG = re.compile(r"bench-(\d+)-(\d+)")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.home = Path(tempfile.mkdtemp(prefix="lmops-ack-bench-"))
        self.slack = LocalSlack()
        self.arrived: dict[tuple[int, int], float] = {}
        self.round = 0
        self.procs: list[subprocess.Popen[bytes]] = []

    def env(self, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LMOPS_"))}
        env.update(SLACK_BOT_TOKEN=self.slack.bot_token,
                   SLACK_SIGNING_SECRET=self.slack.signing_secret,
                   SLACK_API_URL=self.slack.api_url, LMOPS_HOME=str(self.home),
                   LMOPS_PORT=str(port), LMOPS_ADMINS=ADMIN_USER_ID,
                   PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        return env

    def spawn(self, argv: list[str], port: int, log: str) -> subprocess.Popen[bytes]:
        out = open(self.home / log, "wb")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(argv, env=self.env(port), cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def on_change(self, kind: str, data: dict) -> None:  # the local Slack's thread
        if kind != "message" or data.get("channel") != GENERAL_CHANNEL_ID:
            return
        message = self.slack.state.get_message(data["channel"], data["ts"])
        if message is None or not message.user or message.user == ADMIN_USER_ID:
            return
        found = _TAG.search(message.text or "")
        if found:
            self.arrived.setdefault((int(found[1]), int(found[2])), time.perf_counter())

    async def wait_up(self, url: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                try:
                    async with session.post(f"{url}/slack/events", data=b"") as resp:
                        if resp.status in (401, 400, 200):
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{url} did not come up")

    async def burst(self, url: str, n: int, *, predictions: bool) -> tuple[list[float],
                                                                           list[float]]:
        """One round of n concurrent commands: ack latencies, prediction latencies (s)."""
        self.round += 1
        ws = self.slack.state
        bodies = []
        for i in range(n):
            text = (f"classify labels=positive,negative bench-{self.round}-{i} "
                    "I really love how fast this is")
            form = payloads.slash_command_form(
                ws, text=text, user=ADMIN_USER_ID, channel=GENERAL_CHANNEL_ID, command="/lm",
                response_url=ws.new_response_url(channel=GENERAL_CHANNEL_ID, user=ADMIN_USER_ID),
                trigger_id=payloads.new_trigger_id())
            bodies.append(urlencode(form).encode())
        connector = aiohttp.TCPConnector(limit=0)
        sent: dict[int, float] = {}
        async with aiohttp.ClientSession(connector=connector) as session:
            async def one(i: int) -> float:
                headers = {"Content-Type": FORM, **sign(self.slack.signing_secret, bodies[i])}
                sent[i] = started = time.perf_counter()
                async with session.post(f"{url}/slack/events", data=bodies[i],
                                        headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"request {i}: HTTP {resp.status}")
                return time.perf_counter() - started

            acks = await asyncio.gather(*(one(i) for i in range(n)))
        latencies: list[float] = []
        if predictions:
            deadline = time.monotonic() + self.args.prediction_timeout
            keys = [(self.round, i) for i in range(n)]
            while time.monotonic() < deadline and not all(k in self.arrived for k in keys):
                await asyncio.sleep(0.05)
            latencies = [self.arrived[k] - sent[k[1]] for k in keys if k in self.arrived]
            if len(latencies) < n:
                print(f"  round {self.round}: {n - len(latencies)} predictions did not arrive",
                      file=sys.stderr)
        return list(acks), latencies

    async def phase(self, name: str, url: str, *, predictions: bool) -> dict:
        await self.burst(url, 5, predictions=predictions)  # warm-up (auth.test, connections)
        acks: list[float] = []
        preds: list[float] = []
        for _ in range(self.args.rounds):
            a, p = await self.burst(url, self.args.requests, predictions=predictions)
            acks += a
            preds += p
            await asyncio.sleep(0.5)
        row = {"phase": name, "n": len(acks), "ack_p50": statistics.median(acks) * 1000,
               "ack_p99": _percentile(acks, 99) * 1000, "ack_max": max(acks) * 1000}
        if preds:
            row.update(pred_p50=statistics.median(preds) * 1000,
                       pred_p99=_percentile(preds, 99) * 1000, pred_n=len(preds))
        _print_row(row)
        return row

    async def lone(self, url: str, n: int = 20) -> dict:
        """Single requests one after another: the latency of a prediction nobody queues for."""
        acks: list[float] = []
        preds: list[float] = []
        for _ in range(n):
            a, p = await self.burst(url, 1, predictions=True)
            acks += a
            preds += p
            await asyncio.sleep(0.2)
        row = {"phase": "lmops bot + worker, one request at a time", "n": len(acks),
               "ack_p50": statistics.median(acks) * 1000, "ack_p99": _percentile(acks, 99) * 1000,
               "ack_max": max(acks) * 1000, "pred_p50": statistics.median(preds) * 1000,
               "pred_p99": _percentile(preds, 99) * 1000, "pred_n": len(preds)}
        _print_row(row)
        return row

    async def start_finetune(self, url: str) -> None:
        lines = ["text,label"]
        good = ("great", "lovely", "excellent", "fast", "helpful", "perfect")
        bad = ("awful", "slow", "broken", "useless", "terrible", "rude")
        for i in range(3000):
            words = good if i % 2 else bad
            lines.append(f"the service was {words[i % 6]} and {words[(i // 6) % 6]} {i},"
                         f"{'pos' if i % 2 else 'neg'}")
        self.slack.deliver_to = f"{url}/slack/events"
        await asyncio.to_thread(self.slack.run_sync, self.slack.deliver.file_share(
            "bench-train.csv", "\n".join(lines) + "\n"))
        await self._wait_db(lambda s: _datasets(s), "the data set to be stored")
        await asyncio.to_thread(self.slack.run_sync, self.slack.deliver.slash_command(
            "finetune bench-train epochs=50"))
        await self._wait_db(lambda s: _finetune_running(s), "the fine-tune to start", 300)

    async def _wait_db(self, check, what: str, timeout: float = 60.0) -> None:
        from storage.db import make_engine, session_scope

        engine = make_engine(f"sqlite:///{self.home / 'lmops.db'}")
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                with session_scope(engine) as session:
                    if check(session):
                        return
                await asyncio.sleep(0.5)
        finally:
            engine.dispose()
        raise TimeoutError(f"waited {timeout:.0f} s for {what}")

    async def run(self) -> list[dict]:
        self.slack.start()
        self.slack.state.subscribe(self.on_change)
        rows = []
        try:
            port = _free_port()
            bare = self.spawn([sys.executable, "-c", BARE_APP], port, "bare.log")
            await self.wait_up(f"http://127.0.0.1:{port}")
            rows.append(await self.phase("bare AsyncApp (ack only)", f"http://127.0.0.1:{port}",
                                         predictions=False))
            bare.terminate()
            bare.wait()
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            self.spawn([sys.executable, "-c", BOT_APP], port, "bot.log")
            await self.wait_up(url)
            rows.append(await self.phase("lmops bot, no worker", url, predictions=False))
            if self.args.worker:
                lmops = Path(sys.executable).with_name("lmops")
                self.spawn([str(lmops), "worker"], port, "worker.log")
                print("  waiting for the worker's first prediction (model load)...",
                      file=sys.stderr)
                await self.burst(url, 1, predictions=True)
                await self._wait_until_idle()
                rows.append(await self.phase("lmops bot + worker", url, predictions=True))
                rows.append(await self.lone(url))
                if self.args.busy:
                    await self.start_finetune(url)
                    rows.append(await self.phase("lmops bot + worker, fine-tune running", url,
                                                 predictions=True))
                    port = _free_port()
                    bare = self.spawn([sys.executable, "-c", BARE_APP], port, "bare2.log")
                    await self.wait_up(f"http://127.0.0.1:{port}")
                    rows.append(await self.phase("bare AsyncApp, fine-tune running",
                                                 f"http://127.0.0.1:{port}", predictions=False))
        finally:
            for proc in self.procs:
                if proc.poll() is None:
                    proc.terminate()
            for proc in self.procs:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            self.slack.stop()
        return rows

    async def _wait_until_idle(self) -> None:
        await self._wait_db(lambda s: not _todo(s), "the queue to drain", 600)


def _datasets(session) -> bool:
    from sqlmodel import select

    from storage.tables import Dataset

    return session.exec(select(Dataset)).first() is not None


def _finetune_running(session) -> bool:
    from storage import queue

    return any(j.kind == "finetune" and j.status == "doing" and (j.progress or {}).get("step")
               for j in queue.list_jobs(session=session, statuses=["doing"]))


def _todo(session) -> bool:
    from storage import queue

    return bool(queue.list_jobs(session=session, statuses=["todo"], kinds=["classify"]))


def _print_row(row: dict) -> None:
    pred = (f"  prediction p50 {row['pred_p50']:7.0f} ms  p99 {row['pred_p99']:7.0f} ms"
            if "pred_p50" in row else "")
    print(f"{row['phase']:42s} n={row['n']:3d}  ack p50 {row['ack_p50']:6.1f} ms  "
          f"p99 {row['ack_p99']:6.1f} ms  max {row['ack_max']:6.1f} ms{pred}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50, help="concurrent requests a round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-worker", dest="worker", action="store_false",
                        help="measure acks only (no `lmops worker`, no predictions)")
    parser.add_argument("--no-busy", dest="busy", action="store_false",
                        help="skip the phase with a fine-tune running")
    parser.add_argument("--prediction-timeout", type=float, default=120.0)
    args = parser.parse_args()
    rows = asyncio.run(Bench(args).run())
    print("\n| setup | requests | ack p50 ms | ack p99 ms | prediction p50 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        pred = (f"{r['pred_p50']:.0f} | {r['pred_p99']:.0f}" if "pred_p50" in r else "– | –")
        print(f"| {r['phase']} | {r['n']} | {r['ack_p50']:.1f} | {r['ack_p99']:.1f} | {pred} |")


if __name__ == "__main__":
    main()
