"""The house rules that keep the code cheap to change: who may import whom, no import cycles
between modules, and small files."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "engine", "storage", "lmops", "localslack")
MAX_LINES = 400


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def module_level_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Project modules imported at module level (not inside functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(nodes) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return {m for m in found if m in known and m != name}


def test_no_import_cycles_between_modules():
    modules = project_modules()
    graph = {name: module_level_imports(path, name, set(modules)) for name, path in modules.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, stack)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [])
    # a package's __init__ importing its own submodules is not a cycle between modules
    real = [c for c in cycles if not all(m == c[0] or m.startswith(c[0] + ".") or
                                         c[0].startswith(m + ".") for m in c)]
    assert not real, "import cycles: " + "; ".join(" -> ".join(c) for c in real)


@pytest.mark.parametrize("package, forbidden", [
    ("storage", ("bot", "engine", "lmops", "localslack")),
    ("engine", ("bot", "lmops", "localslack")),
    ("bot", ("lmops", "localslack")),
    ("localslack", ("bot", "engine", "storage", "lmops")),
])
def test_packages_import_only_what_the_layers_allow(package, forbidden):
    offenders = []
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names
                          if n.split(".")[0] in forbidden]
    assert not offenders


def test_only_the_worker_imports_storage_in_the_engine():
    users = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "engine").rglob("*.py")
                   if "from storage" in p.read_text() or "import storage" in p.read_text())
    assert users == ["engine/worker.py"]


def test_no_file_over_400_lines_outside_tests_and_the_browser_page():
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    long = {f: n for f in tracked if not f.startswith("tests/") and (ROOT / f).exists()
            and (n := len((ROOT / f).read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines: {long}"
