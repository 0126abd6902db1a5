#!/usr/bin/env bash
# Installs what the real-browser tests (tests/browser/) need, on Debian as root:
#   chromium from Debian (Playwright's own browser download is not reachable, so it is never used),
#   the Playwright Python package that drives it over the DevTools protocol.
# Idempotent: skips whatever is already installed. Never runs `playwright install`.
# Usage: bash scripts/setup_browser.sh
set -euo pipefail

PLAYWRIGHT_VERSION=1.65.2
CHROMIUM=/usr/bin/chromium

if [ ! -x "$CHROMIUM" ]; then
  echo "setup_browser: installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends chromium fonts-noto-color-emoji
else
  echo "setup_browser: $CHROMIUM present ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"
fi

installed=$(python3 -c "import importlib.metadata as m; print(m.version('playwright'))" 2>/dev/null || true)
if [ "$installed" != "$PLAYWRIGHT_VERSION" ]; then
  echo "setup_browser: installing playwright==$PLAYWRIGHT_VERSION (Python package only)"
  python3 -m pip install -q --disable-pip-version-check "playwright==$PLAYWRIGHT_VERSION"
else
  echo "setup_browser: playwright $installed present"
fi

python3 -c "import playwright.sync_api" || { echo "setup_browser: playwright does not import" >&2; exit 1; }
"$CHROMIUM" --version >/dev/null || { echo "setup_browser: $CHROMIUM does not run" >&2; exit 1; }
echo "setup_browser: ready (tests: python3 -m pytest tests/browser)"
