"""`lmops dev`: the whole product on one machine, offline, with no Slack account.

It starts a local Slack-compatible workspace with its browser page (`localslack`), the bot
(`bot.server.create_asgi` behind uvicorn, exactly as `lmops serve` runs it) pointed at that
workspace through `SLACK_API_URL`, with a bot token and signing secret made up for the run, and
an engine worker in a child process (`lmops worker`), all on the SQLite database under
`LMOPS_HOME`. The workspace's team is `local`, the workspace the CLI uses, so models trained
from the CLI show up in the browser and the other way round. The local user (`U_ADMIN`) is an
admin.

    run_dev(get_settings())                       # blocks until Ctrl-C
    python -m lmops.dev --port 0                  # the same from a shell; a free port

The first line on stdout is `lmops dev: open http://HOST:PORT/?token=SECRET`, so a test or a
script that starts it as a subprocess learns the URL from it; logs go to stderr. As with
Jupyter, the page needs that secret (made for each run, or `LMOPS_DEV_TOKEN`): without it
another user of the machine could act in the workspace as its admin. `--host` other than
loopback is refused unless `LMOPS_DEV_TOKEN` is set, a secret chosen on purpose.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import webbrowser
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO
from urllib.parse import quote

from pydantic import SecretStr

from engine.settings import Settings, get_settings

log = logging.getLogger(__name__)

DEFAULT_PORT = 3001
READY_PREFIX = "lmops dev: open "
LOCAL_TEAM = ("local", "lmops dev", "lmops-dev")  # storage's LOCAL_TEAM_ID, a name, a domain
TOKEN_ENV = "LMOPS_DEV_TOKEN"


class DevError(RuntimeError):
    """`lmops dev` could not start (a port in use, a bot that did not come up)."""


def is_loopback(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1: only this machine can connect."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def page_token(host: str = "127.0.0.1", env: dict[str, str] | None = None) -> str:
    """The page's secret for a run: `LMOPS_DEV_TOKEN`, or a new random one. Off loopback
    (`--host 0.0.0.0`) a made-up one is not enough: the user must choose it (DevError)."""
    chosen = (os.environ if env is None else env).get(TOKEN_ENV, "").strip()
    if chosen:
        return chosen
    if not is_loopback(host):
        raise DevError(f"--host {host} lets other machines reach the workspace page; set "
                       f"{TOKEN_ENV} to a secret of your own to allow that, or use "
                       "--host 127.0.0.1")
    return secrets.token_urlsafe(32)


def dev_settings(settings: Settings, *, api_url: str, bot_token: str,
                 signing_secret: str) -> Settings:
    """The bot's settings for the local workspace: its Web API, made-up credentials, HTTP
    mode (no app token), and the local user among the admins."""
    from localslack import ADMIN_USER_ID

    admins = ",".join(sorted(settings.admins | {ADMIN_USER_ID}))
    return settings.model_copy(update={
        "slack_api_url": api_url, "slack_bot_token": SecretStr(bot_token),
        "slack_signing_secret": SecretStr(signing_secret), "slack_app_token": None,
        "lmops_admins": admins, "lmops_home": settings.home.resolve(),
        "lmops_artifacts": settings.artifacts.resolve(),
        "lmops_database_url": settings.database_url})


def slash_commands() -> list[dict[str, str]]:
    """The bot's `/lm` sub-commands (`bot.commands.SUBCOMMANDS`) as the page's completions:
    `[{name, usage, description}]`. `localslack` knows nothing of the bot; this is the wiring."""
    from bot.commands import SUBCOMMANDS

    return [{"name": s.name, "usage": s.usage, "description": s.description}
            for s in SUBCOMMANDS.values()]


def worker_env(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The worker's environment: the same data folder, database and artifact root as the bot,
    and no Slack credentials (workers never talk to Slack)."""
    env = dict(os.environ if base is None else base)
    for key in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        env.pop(key, None)
    env.update({"LMOPS_HOME": str(settings.home.resolve()),
                "LMOPS_ARTIFACTS": str(settings.artifacts.resolve()),
                "LMOPS_DATABASE_URL": settings.database_url,
                "LMOPS_ADMINS": settings.lmops_admins,
                "LMOPS_HEARTBEAT_TIMEOUT": str(settings.lmops_heartbeat_timeout)})
    return env


def _bound_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(False)
    return sock


class DevStack:
    """The running parts of `lmops dev`: `await start()`, `url`, `await stop()`.

    `worker=False` leaves the engine worker out (for tests that enqueue only); `token` is the
    page's secret (default: `page_token(host)`, which refuses a non-loopback host without
    `LMOPS_DEV_TOKEN`).
    """

    def __init__(self, settings: Settings, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 worker: bool = True, worker_cmd: Sequence[str] | None = None,
                 token: str | None = None) -> None:
        self.token = token or page_token(host)
        self.settings, self.host, self.port = settings, host, port
        self.worker, self.worker_cmd = worker, worker_cmd
        self.slack: Any = None
        self.bot_settings: Settings | None = None
        self.child: subprocess.Popen[bytes] | None = None
        self._server: Any = None
        self._serving: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """The page's address with its secret: `http://127.0.0.1:PORT/?token=...`."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.slack.port}/?token={quote(self.token, safe='')}"

    async def start(self) -> str:
        """Start the workspace, the bot and the worker; returns the page's URL."""
        from lmops.wiring import upgrade_if_needed
        from localslack import LocalSlack, Team, Workspace

        self.settings.home.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(upgrade_if_needed, self.settings.database_url)
        bot_token = "xoxb-lmops-dev-" + secrets.token_hex(12)
        signing_secret = secrets.token_hex(32)
        workspace = Workspace(Team(*LOCAL_TEAM))
        self.slack = LocalSlack(workspace, bot_token=bot_token, signing_secret=signing_secret,
                                app_token=None, host=self.host, port=self.port,
                                commands=slash_commands, page_token=self.token)
        try:
            await self.slack.start_async()
        except OSError as exc:
            raise DevError(f"can't listen on {self.host}:{self.port} ({exc.strerror}); "
                           "pass --port 0 for a free port") from None
        self.bot_settings = dev_settings(self.settings, api_url=self.slack.api_url,
                                         bot_token=bot_token, signing_secret=signing_secret)
        bot_port = await self._start_bot(self.bot_settings)
        self.slack.deliver_to = f"http://127.0.0.1:{bot_port}/slack/events"
        if self.worker:
            from bot.server import worker_command

            self.child = await asyncio.to_thread(
                subprocess.Popen, list(self.worker_cmd or worker_command()),
                env=worker_env(self.bot_settings), stdin=subprocess.DEVNULL)
        return self.url

    async def _start_bot(self, settings: Settings) -> int:
        import uvicorn

        from bot.server import create_asgi

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:  # `run_dev` owns Ctrl-C
                yield

        sock = _bound_socket("127.0.0.1", 0)
        config = uvicorn.Config(create_asgi(settings), lifespan="on", log_level="warning",
                                access_log=False)
        self._server = Server(config)
        self._serving = asyncio.create_task(self._server.serve(sockets=[sock]), name="bot")
        while not self._server.started:
            if self._serving.done():
                error = self._serving.exception()
                raise DevError(f"the bot did not start: {error or 'it exited'}")
            await asyncio.sleep(0.02)
        return int(sock.getsockname()[1])

    def problem(self) -> str | None:
        """Why the stack is no longer whole (the bot stopped, the worker exited), or None."""
        if self._serving is not None and self._serving.done():
            return "the bot stopped"
        if self.child is not None and self.child.poll() is not None:
            return f"the worker exited with status {self.child.returncode}"
        return None

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker (SIGTERM: it hands its job back), the bot and the workspace."""
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()
            try:
                await asyncio.to_thread(self.child.wait, timeout)
            except subprocess.TimeoutExpired:
                log.warning("the worker did not stop within %.0f s; killing it", timeout)
                self.child.kill()
                await asyncio.to_thread(self.child.wait)
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(self._serving), 10.0)
            except (TimeoutError, Exception):  # noqa: BLE001 (stopping anyway)
                self._serving.cancel()
        if self.slack is not None:
            await self.slack.stop_async()


async def run_dev_async(settings: Settings, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                        open_browser: bool = False, worker: bool = True,
                        stop: asyncio.Event | None = None,
                        ready: Callable[[str], None] | None = None,
                        out: TextIO | None = None) -> None:
    """Run `lmops dev` on the current event loop until `stop` is set (or SIGINT/SIGTERM).

    Prints `lmops dev: open URL` first on `out` (stdout), then calls `ready(url)`; the URL
    holds the page's secret. Raises DevError at once for a non-loopback `host` without
    `LMOPS_DEV_TOKEN`.
    """
    stack = DevStack(settings, host=host, port=port, worker=worker)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        url = await stack.start()
        print(f"{READY_PREFIX}{url}", file=out or sys.stdout, flush=True)
        print(f"lmops dev: you are an admin of workspace 'local'; Ctrl-C to stop\n"
              f"lmops dev: data folder {settings.home.resolve()} (models, database, uploads; "
              "LMOPS_HOME overrides it)", file=sys.stderr, flush=True)
        if not is_loopback(host):
            print(f"lmops dev: listening on {host}: anyone with the URL's token can act as "
                  "you in the workspace", file=sys.stderr, flush=True)
        if ready is not None:
            ready(url)
        if open_browser:
            webbrowser.open(url)
        warned = False
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            problem = stack.problem()
            if problem == "the bot stopped":
                raise DevError(problem)
            if problem and not warned:
                print(f"lmops dev: warning: {problem}; jobs wait in the queue", file=sys.stderr)
                warned = True
    finally:
        print("lmops dev: stopping…", file=sys.stderr, flush=True)
        await stack.stop()
        for sig in handled:
            loop.remove_signal_handler(sig)


def run_dev(settings: Settings, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
            open_browser: bool = False, worker: bool = True) -> None:
    """Run `lmops dev` until Ctrl-C (blocking); see the module's docstring."""
    asyncio.run(run_dev_async(settings, host=host, port=port, open_browser=open_browser,
                              worker=worker))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m lmops.dev [--host H] [--port P] [--open] [--no-worker]`."""
    parser = argparse.ArgumentParser(prog="lmops dev", description=(
        "A local Slack-compatible workspace in the browser with the bot and a worker: "
        "try lmops with no Slack account."))
    parser.add_argument("--host", default="127.0.0.1", help=(
        f"interface (default 127.0.0.1; another needs {TOKEN_ENV}, the page's secret, set)"))
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"the page's port (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--open", action="store_true", help="open the page in a browser")
    parser.add_argument("--no-worker", action="store_true", help="start no engine worker")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        run_dev(get_settings(), host=args.host, port=args.port, open_browser=args.open,
                worker=not args.no_worker)
    except DevError as exc:
        print(f"lmops dev: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
