"""Data sets from files shared in Slack: download with the bot token (only from Slack's file
host or the host of `SLACK_API_URL`, size-limited), validate with `engine.data` in a child
process (niced, memory-limited, at most `MAX_ROWS` rows, one at a time: the bot's memory and
event loop stay free), store under `<artifacts>/datasets/<sha256>/<name>` atomically (the name
shortened to fit), record the data set (once per content and workspace), and answer in the
file's thread with the validation report and Fine-tune / Evaluate buttons. A file that can't be
used gets the reasons; nothing is kept, and sharing it again is handled again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import dataset_report_blocks, fallback_text
from bot.job_requests import Origin
from bot.runtime import BotRuntime
from engine.data_formats import UPLOAD_MAX_ROWS, check_upload, upload_refusal
from storage import datasets
from storage.tables import DatasetCreate, DatasetPublic

log = logging.getLogger(__name__)

MAX_BYTES = 20 * 1024 * 1024
EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json")
#: Files that look like data but aren't usable get an answer; other files (images, PDFs...)
#: are only answered in a DM, so sharing a screenshot in a channel draws no complaint.
DATA_LIKE = (*EXTENSIONS, ".txt", ".tab", ".ndjson", ".xlsx", ".xls", ".ods", ".parquet")
SLACK_FILE_HOST = "files.slack.com"
_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)
#: The most rows a data set may have (the checker stops reading there).
MAX_ROWS = UPLOAD_MAX_ROWS
#: The checker process: its address-space limit, its time limit, how many run at once.
CHECK_MEMORY = 1024**3
CHECK_TIMEOUT = 120.0
CHECKERS = 1
#: A file that could not be used may be shared again after this many seconds (a shorter
#: wait would answer the `message` and `file_shared` events of one share twice).
RETRY_AFTER = 10.0
#: Stored file names are cut to this many UTF-8 bytes (file systems allow 255).
MAX_NAME_BYTES = 120
_CHILD = "from engine.data_formats import upload_main; upload_main()"
_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = \
    weakref.WeakKeyDictionary()


class UploadError(Exception):
    """A shared file that can't become a data set; the message is for the user."""


@dataclass(frozen=True)
class SharedFile:
    """A file shared into a conversation, and where to answer."""

    file: dict[str, Any]
    thread_ts: str | None
    is_dm: bool


def allowed_url(url: str, api_url: str) -> bool:
    """Only Slack's file host (HTTPS) or the Web API's own host may be downloaded from."""
    target, api = urlparse(url), urlparse(api_url)
    if target.hostname == SLACK_FILE_HOST:
        return target.scheme == "https"
    return bool(target.hostname) and target.hostname == api.hostname and \
        target.port == api.port and target.scheme in ("https", api.scheme)


async def download(url: str, *, token: str, api_url: str, limit: int = MAX_BYTES) -> bytes:
    """The file's bytes; redirects are followed only to allowed hosts."""
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
        for _ in range(4):
            if not allowed_url(url, api_url):
                raise UploadError("the file is not on Slack's file server, so it wasn't "
                                  "downloaded")
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(url, headers=headers, allow_redirects=False) as response:
                if response.status in (301, 302, 303, 307, 308):
                    url = urljoin(url, response.headers.get("Location", ""))
                    continue
                if response.status != 200:
                    raise UploadError(f"Slack answered {response.status} for the file; does the "
                                      "app have the files:read scope?")
                if response.content_type == "text/html":
                    raise UploadError("Slack sent a web page instead of the file; does the app "
                                      "have the files:read scope?")
                data = bytearray()
                async for chunk in response.content.iter_chunked(1 << 16):
                    data.extend(chunk)
                    if len(data) > limit:
                        raise UploadError(_too_large(len(data), limit, more=True))
                return bytes(data)
    raise UploadError("too many redirects while downloading the file")


def _too_large(size: int, limit: int, more: bool = False) -> str:
    return (f"the file is {'over ' if more else ''}{size / 1e6:.1f} MB; data sets may be at "
            f"most {limit / 1e6:.0f} MB")


def dataset_name(file_name: str) -> str:
    """A data set name from a file name: its stem, in letters, digits, `.`, `_` and `-`."""
    stem = Path(file_name).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:64] or "dataset"


def safe_file_name(name: str, max_bytes: int | None = MAX_NAME_BYTES) -> str:
    """The last part of `name`, in characters safe in a path (never hidden, never `..`), at
    most `max_bytes` bytes in UTF-8 (the stem is cut, the extension kept)."""
    safe = re.sub(r"[^\w.\- ]+", "_", Path(name).name).strip().lstrip(".") or "data"
    if max_bytes is None or len(safe.encode()) <= max_bytes:
        return safe
    stem, ext = os.path.splitext(safe)
    ext = ext if len(ext.encode()) <= 16 else ""
    cut = stem.encode()[: max_bytes - len(ext.encode())].decode("utf-8", "ignore").rstrip()
    return (cut or "data") + ext


def shown_name(name: str, limit: int = 80) -> str:
    """A file name short enough for a message (its extension kept)."""
    if len(name) <= limit:
        return name
    stem, ext = os.path.splitext(name)
    ext = ext if len(ext) <= 16 else ""
    return stem[: limit - len(ext) - 1] + "…" + ext


refused = upload_refusal


def inspect(data: bytes, name: str) -> tuple[dict[str, Any], list[str]]:
    """Validate a data file in this process: the report (`ValidationReport.to_json()`, row
    lists cut to their first few) and the columns. The bot uses `check_isolated`."""
    return check_upload(data, name, max_rows=MAX_ROWS)


def _child_env() -> dict[str, str]:
    """The checker's environment: no Slack or lmops settings (no tokens, no database URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LMOPS_"))}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


async def check_isolated(data: bytes, name: str) -> tuple[dict[str, Any], list[str]]:
    """`inspect` in a child process (one at a time); raises `UploadError` when it fails."""
    slots = _SLOTS.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(CHECKERS))
    async with slots:
        with tempfile.TemporaryDirectory(prefix="lmops-upload-") as folder:
            path = Path(folder) / "data"
            await asyncio.to_thread(path.write_bytes, data)
            request = json.dumps({"path": str(path), "name": name, "max_rows": MAX_ROWS,
                                  "memory_bytes": CHECK_MEMORY}).encode()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _CHILD, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=_child_env())
            try:
                out, err = await asyncio.wait_for(proc.communicate(request), CHECK_TIMEOUT)
            except TimeoutError:
                raise UploadError(f"checking the file took over {CHECK_TIMEOUT:.0f} s; upload "
                                  "fewer rows") from None
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
    try:
        if proc.returncode != 0:
            raise ValueError(f"exit status {proc.returncode}")
        answer = json.loads(out)
        return dict(answer["report"]), [str(c) for c in answer["columns"]]
    except (ValueError, KeyError, TypeError) as error:
        log.error("the upload checker failed (%s): %s", error, err.decode(errors="replace")[-2000:])
        raise UploadError("the file couldn't be checked (the checker stopped); share it again "
                          "to retry") from None


def store_file(root: Path, sha256: str, name: str, data: bytes) -> Path:
    """Write `data` to `root/datasets/<sha256>/<name>` atomically (temp file, then rename)."""
    folder = (root / "datasets" / sha256).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / safe_file_name(name)
    if target.is_file() and target.stat().st_size == len(data):
        return target
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


async def _reply(client: AsyncWebClient, origin: Origin, thread_ts: str | None,
                 dataset: DatasetPublic | str, report: dict[str, Any]) -> None:
    """The validation report of a data set (or of a file by name that was not kept)."""
    card = {"name": dataset} if isinstance(dataset, str) else dataset.to_json()
    blocks = dataset_report_blocks(card, report)
    await client.chat_postMessage(channel=origin.channel_id or "", thread_ts=thread_ts,
                                  blocks=blocks, text=fallback_text(blocks))


async def handle_file(rt: BotRuntime, client: AsyncWebClient, origin: Origin,
                      shared: SharedFile) -> None:
    """Turn one shared file into a data set (or explain why not), once per file. Every file
    that looks like data gets an answer; one that could not be used counts as handled only
    for `RETRY_AFTER` seconds, so sharing it again (after a fix) is answered again."""
    file = shared.file
    name = str(file.get("name") or file.get("title") or "upload")
    key = f"{origin.team_id}:file:{file.get('id')}"
    if not rt.seen.add(key):
        return
    kept = False
    try:
        kept = await _handle(rt, client, origin, shared, name)
    except Exception as error:  # every file gets an answer
        log.exception("handling the shared file %s failed", file.get("id"))
        why = getattr(error, "strerror", None) or type(error).__name__
        problem = f"{shown_name(name)}: couldn't be handled ({why}); share it again to retry"
        try:
            await _reply(client, origin, shared.thread_ts, shown_name(name),
                         refused(shown_name(name), [problem]))
        except Exception:  # noqa: BLE001 (Slack unreachable: logged above)
            log.warning("couldn't answer about the shared file %s", file.get("id"))
    finally:
        if not kept:
            rt.seen.forget(key, after=RETRY_AFTER)


async def _handle(rt: BotRuntime, client: AsyncWebClient, origin: Origin, shared: SharedFile,
                  name: str) -> bool:
    """True when the file is (or was already) a data set, or is no data file at all."""
    file, shown = shared.file, shown_name(name)
    ext = Path(name).suffix.lower()
    if ext not in DATA_LIKE and not shared.is_dm:
        return True
    problem = None
    if ext not in EXTENSIONS:
        hint = " (save a spreadsheet as CSV, UTF-8)" if ext in (".xlsx", ".xls", ".ods") else ""
        problem = f"{shown}: data sets are CSV, TSV, JSONL or JSON files{hint}"
    elif int(file.get("size") or 0) > MAX_BYTES:
        problem = f"{shown}: {_too_large(int(file['size']), MAX_BYTES)}"
    data = b""
    if problem is None:
        url = file.get("url_private_download") or file.get("url_private") or ""
        try:
            data = await download(url, token=client.token or "",
                                  api_url=rt.settings.slack_api_url)
        except (UploadError, aiohttp.ClientError, TimeoutError) as error:
            problem = f"{shown}: {error}"
    if problem is not None:
        await _reply(client, origin, shared.thread_ts, shown, refused(shown, [problem]))
        return False
    return await _keep(rt, client, origin, shared.thread_ts, name, data)


async def _keep(rt: BotRuntime, client: AsyncWebClient, origin: Origin, thread_ts: str | None,
                name: str, data: bytes) -> bool:
    sha256 = hashlib.sha256(data).hexdigest()
    existing: DatasetPublic | None = await rt.store.run(
        datasets.find_dataset_by_sha256, workspace_id=origin.workspace_id, sha256=sha256)
    if existing is not None:
        report = dict(existing.validation_report or {})
        report["warnings"] = [*report.get("warnings", []),
                              f"this file was uploaded before as data set {existing.name!r}"]
        await _reply(client, origin, thread_ts, existing, report)
        return True
    shown = shown_name(name)
    try:
        report, columns = await check_isolated(data, shown)
    except UploadError as error:
        report, columns = refused(shown, [f"{shown}: {error}"]), []
    if not report.get("ok"):
        await _reply(client, origin, thread_ts, shown, report)
        return False
    file_name = safe_file_name(name)
    if file_name != safe_file_name(name, max_bytes=None):
        report["warnings"] = [*report.get("warnings", []),
                              f"the file name is long; it was stored as {file_name!r}"]
    else:
        file_name = name
    path = await asyncio.to_thread(store_file, rt.settings.artifacts, sha256, file_name, data)
    dataset = await rt.store.create_dataset(DatasetCreate(
        workspace_id=origin.workspace_id, name=dataset_name(name), file_name=file_name,
        sha256=sha256, stored_path=str(path), task=report["task"], n_rows=report.get("n"),
        columns=columns, validation_report=report, uploader=origin.user_id or None))
    await rt.store.audit(origin.workspace_id, origin.user_id, "dataset.create", dataset.name,
                         id=dataset.id, sha256=sha256, rows=report.get("n"))
    await _reply(client, origin, thread_ts, dataset, report)
    return True
