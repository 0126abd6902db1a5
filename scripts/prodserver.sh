#!/usr/bin/env bash
# oTree's production server on PostgreSQL, run in the background with its timeout worker.
#
#   bash scripts/prodserver.sh resetdb              # create the tables (WIPES all data; asks unless --yes)
#   bash scripts/prodserver.sh start [ADDR:PORT]    # default 0.0.0.0:8000; log in .prodserver/server.log
#   bash scripts/prodserver.sh status | stop | log
#
# Reads the environment from .env.production (written by scripts/postgres.sh setup) or from ENV_FILE;
# variables already set in the environment win. Refuses to start without PostgreSQL and the secrets a
# real study needs (OTREE_AUTH_LEVEL=STUDY, OTREE_ADMIN_PASSWORD, OTREE_SECRET_KEY, OTREE_REST_KEY).
# `otree prodserver` starts a child `otree timeoutsubprocess` that outlives its parent, so the server
# runs in its own process group (setsid) and `stop` ends the whole group.
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_FILE=${ENV_FILE:-.env.production}
STATE_DIR=${STATE_DIR:-.prodserver}
PID_FILE=$STATE_DIR/pgid
LOG_FILE=$STATE_DIR/server.log

die() { echo "prodserver.sh: $*" >&2; exit 1; }

load_env() {
  if [ -f "$ENV_FILE" ]; then
    local saved; saved=$(export -p)  # the caller's environment wins over the file
    # shellcheck disable=SC1090
    source "$ENV_FILE"
    eval "$saved"
  fi
}

require_production_env() {
  local missing=()
  case "${DATABASE_URL:-}" in
    postgres://*|postgresql://*) ;;
    *) missing+=("DATABASE_URL=postgresql://... (SQLite locks up under prodserver)") ;;
  esac
  [ "${OTREE_AUTH_LEVEL:-}" = STUDY ] || missing+=("OTREE_AUTH_LEVEL=STUDY")
  for name in OTREE_ADMIN_PASSWORD OTREE_SECRET_KEY OTREE_REST_KEY; do
    [ -n "${!name:-}" ] || missing+=("$name")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    printf 'prodserver.sh: refusing to start a production server without:\n' >&2
    printf '  - %s\n' "${missing[@]}" >&2
    die "run 'sudo bash scripts/postgres.sh setup' (writes $ENV_FILE) or export them; see README 'Hosting a real study'"
  fi
  export OTREE_PRODUCTION=${OTREE_PRODUCTION:-1}
}

running_pgid() {  # prints the process group if the server is alive
  [ -f "$PID_FILE" ] || return 1
  local pgid; pgid=$(cat "$PID_FILE")
  pgrep -g "$pgid" >/dev/null 2>&1 && echo "$pgid"
}

start() {
  local address=${1:-0.0.0.0:8000}
  require_production_env
  if pgid=$(running_pgid); then die "already running (process group $pgid); stop it first"; fi
  mkdir -p "$STATE_DIR"
  echo "--- $(date -u +%FT%TZ) start $address" >>"$LOG_FILE"
  setsid otree prodserver "$address" >>"$LOG_FILE" 2>&1 < /dev/null &
  echo $! >"$PID_FILE"  # a background job is no group leader, so setsid does not fork: pid = pgid
  local url="http://127.0.0.1:${address##*:}/"
  for _ in $(seq 1 120); do
    if python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url" 2>/dev/null; then
      echo "oTree prodserver running on $address (process group $(cat "$PID_FILE")); log: $LOG_FILE"
      return 0
    fi
    running_pgid >/dev/null || { tail -n 30 "$LOG_FILE" >&2; die "the server exited during start-up"; }
    sleep 0.5
  done
  tail -n 30 "$LOG_FILE" >&2
  stop
  die "the server did not answer on $url within 60 s"
}

stop() {
  local pgid
  if ! pgid=$(running_pgid); then echo "not running"; rm -f "$PID_FILE"; return 0; fi
  kill -TERM -- "-$pgid" 2>/dev/null || true
  for _ in $(seq 1 20); do
    pgrep -g "$pgid" >/dev/null || { rm -f "$PID_FILE"; echo "stopped (server and timeout worker)"; return 0; }
    sleep 0.5
  done
  kill -KILL -- "-$pgid" 2>/dev/null || true
  rm -f "$PID_FILE"
  echo "stopped (killed after 10 s)"
}

load_env
case "${1:-}" in
  start) start "${2:-}" ;;
  stop) stop ;;
  status)
    if pgid=$(running_pgid); then echo "running (process group $pgid):"; pgrep -a -g "$pgid"; else echo "not running"; exit 3; fi ;;
  resetdb)
    require_production_env
    if running_pgid >/dev/null; then die "stop the server before resetdb"; fi
    if [ "${2:-}" != "--yes" ]; then
      read -r -p "resetdb deletes ALL data in $DATABASE_URL. Type yes: " answer
      [ "$answer" = yes ] || die "cancelled"
    fi
    otree resetdb --noinput ;;
  log) tail -n "${2:-50}" "$LOG_FILE" ;;
  *) sed -n '2,11p' "$0"; exit 2 ;;
esac
