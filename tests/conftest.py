"""Test-wide setup: an isolated LMOPS_HOME per session, quiet and offline libraries."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(scope="session", autouse=True)
def lmops_home(tmp_path_factory: pytest.TempPathFactory):
    """Every test session gets its own data folder, so nothing leaks from a developer's .lmops."""
    home = tmp_path_factory.mktemp("lmops-home")
    old = os.environ.get("LMOPS_HOME")
    os.environ["LMOPS_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("LMOPS_HOME", None)
    else:
        os.environ["LMOPS_HOME"] = old


@pytest.fixture(scope="session")
def settings(lmops_home):
    from engine.settings import get_settings

    return get_settings()
