"""The CLI's data folder (issue 12, item 5): with `LMOPS_HOME` unset it is one per-user place
(platformdirs' user data folder, `$XDG_DATA_HOME/lmops` on Linux), not `./.lmops` of the current
directory, so a model fine-tuned from one folder is found from any other; `--help` and
`lmops dev` say where it is; `LMOPS_HOME` still overrides it."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def user_env(xdg: Path, **extra: str) -> dict[str, str]:
    """A user's environment: no LMOPS_HOME (the test session sets one), platformdirs pointed at
    a temp folder through XDG_DATA_HOME, the checkout importable from any folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("LMOPS_HOME", "LMOPS_DEBUG")}
    env.update({"XDG_DATA_HOME": str(xdg), "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}, **extra)
    return env


def lmops(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lmops.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def model_names(result: subprocess.CompletedProcess[str]) -> set[str]:
    assert result.returncode == 0, result.stderr
    return {m["name"] for m in json.loads(result.stdout)}


@pytest.mark.slow
def test_a_model_trained_in_one_folder_is_found_from_another(tmp_path):
    xdg, folder_a, folder_b = tmp_path / "xdg", tmp_path / "a", tmp_path / "b"
    folder_a.mkdir()
    folder_b.mkdir()
    shutil.copy(ROOT / "examples" / "tickets.csv", folder_a / "tickets.csv")
    env = user_env(xdg)

    trained = lmops(folder_a, env, "finetune", "--data", "tickets.csv", "--name", "tickets-v1",
                    "--max-steps", "2", "--json")
    assert trained.returncode == 0, trained.stderr
    assert "tickets-v1" in model_names(lmops(folder_a, env, "models", "--json"))

    # from the other folder: the same models, the same database
    assert "tickets-v1" in model_names(lmops(folder_b, env, "models", "--json"))
    classified = lmops(folder_b, env, "classify", "--model", "tickets-v1", "--json",
                       "I was charged twice for my subscription")
    assert classified.returncode == 0, classified.stderr
    assert json.loads(classified.stdout)[0]["label"] in {"billing", "bug", "praise"}

    home = xdg / "lmops"
    assert (home / "lmops.db").is_file()
    assert not (folder_a / ".lmops").exists() and not (folder_b / ".lmops").exists()
    # --help names the folder
    shown = lmops(folder_b, env, "--help")
    assert shown.returncode == 0 and str(home) in shown.stdout.splitlines()[-1]


def test_lmops_home_still_overrides_the_user_folder(tmp_path):
    xdg, own = tmp_path / "xdg", tmp_path / "own"
    env = user_env(xdg, LMOPS_HOME=str(own))
    assert {"minilm", "smollm2"} <= model_names(lmops(tmp_path, env, "models", "--json"))
    assert (own / "lmops.db").is_file() and not (xdg / "lmops").exists()
    shown = lmops(tmp_path, env, "--help")
    assert shown.stdout.splitlines()[-1].strip() == str(own)


def test_settings_default_to_the_user_data_folder(tmp_path, monkeypatch):
    from engine.settings import get_settings

    monkeypatch.delenv("LMOPS_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    settings = get_settings(_env_file=None)
    assert settings.home == tmp_path / "lmops"
    assert settings.database_url == f"sqlite:///{tmp_path / 'lmops' / 'lmops.db'}"
    assert settings.artifacts == tmp_path / "lmops" / "artifacts"


def test_lmops_dev_prints_the_data_folder(tmp_path):
    xdg = tmp_path / "xdg"
    env = user_env(xdg, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "lmops.dev", "--port", "0", "--no-worker"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr],  # type: ignore[union-attr]
                     daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while not any("data folder" in line for line in seen) and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=1))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    shown = [line for line in seen if "data folder" in line]
    assert shown and str(xdg / "lmops") in shown[0], "".join(seen)
    assert not (tmp_path / ".lmops").exists()
