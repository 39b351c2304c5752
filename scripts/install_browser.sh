#!/usr/bin/env bash
# Installs what the real-browser tests (pytest -m slow tests/integration/test_dev_browser.py) need:
# Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver) and the Python
# driver, Playwright, which launches that chromium (executable_path=/usr/bin/chromium).
# Test tools can't download browsers of their own here: never run `playwright install`.
# fonts-noto-color-emoji: the page (and its screenshots) show emoji as Slack does.
# Idempotent and quick when everything is there; needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}

if [ ! -x /usr/bin/chromium ] || [ ! -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core fonts-noto-color-emoji >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null

# The pip package ships Playwright's driver (Node-based), not browsers.
if ! "$PYTHON" -c "import playwright" 2>/dev/null; then
  "$PYTHON" -m pip install -q "playwright>=1.45"
fi
"$PYTHON" -c "from importlib.metadata import version; print('playwright', version('playwright'))"
