"""`scripts/demo.sh` (issue 12, item 6): it runs from the checkout alone (no `../shared`), shows
each step's command and its output, and exits 0. It runs this checkout's CLI (`LMOPS_CLI`) on
the session's temporary LMOPS_HOME."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STEP = re.compile(r"^==> (\d+)/(\d+) (.+)$")


def steps(output: str) -> tuple[int, dict[int, list[str]]]:
    """The number of steps the demo announced, and each step's lines by number (the command
    shown first, then what it printed)."""
    total, found, number = 0, {}, None
    for line in output.splitlines():
        match = STEP.match(line)
        if match:
            number, total = int(match[1]), int(match[2])
            found[number] = []
        elif line.startswith("demo: "):
            number = None
        elif number is not None and line.strip():
            found[number].append(line)
    return total, found


@pytest.mark.slow
def test_demo_shows_every_step_and_exits_0(lmops_home):
    env = {**os.environ, "LMOPS_HOME": str(lmops_home), "LMOPS_CLI": f"{sys.executable} -m lmops.cli",
           "LMOPS_DEBUG": ""}
    result = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=900, check=False)
    out = result.stdout
    assert result.returncode == 0, out[-4000:]
    assert "../shared" not in (ROOT / "scripts" / "demo.sh").read_text(encoding="utf-8")
    total, found = steps(out)
    assert total >= 4 and sorted(found) == list(range(1, total + 1)), out[-4000:]
    commands = {}
    for number, (command, *printed) in found.items():
        assert command.startswith("$ lmops "), (number, out[-4000:])
        assert printed, f"step {number} ({command}) printed nothing"
        commands.setdefault(command.split()[2], []).extend(printed)
    assert any(line.startswith("sentiment") for line in commands["models"])
    assert any(line.startswith("positive") for line in commands["classify"])
    assert any(line.startswith("billing") for line in commands["classify"])
    assert any(line.startswith("accuracy") for line in commands["eval"])
    assert any(line.strip() and "GGUF" not in line for line in commands["chat"])
    assert f"demo: all {total} steps done" in out
