"""`localslack` is its own package: importing it and every submodule loads nothing of `bot`
(the bot's policy, such as its `/lm` sub-commands, is handed in by `lmops dev`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, pkgutil, importlib, sys
import localslack
names = ["localslack"]
for info in pkgutil.walk_packages(localslack.__path__, "localslack."):
    importlib.import_module(info.name)
    names.append(info.name)
bot = sorted(m for m in sys.modules if m == "bot" or m.startswith("bot."))
print(json.dumps({"imported": names, "bot": bot}))
"""


def test_localslack_and_its_submodules_import_nothing_from_bot():
    # a fresh interpreter in the checkout's root, where `bot` could be imported but must not be
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"localslack.server", "localslack.web", "localslack.web_actions",
            "localslack.api"} <= set(result["imported"])
    assert result["bot"] == []
