#!/usr/bin/env bash
# Several oTree prodservers behind HAProxy, on one PostgreSQL (docs/hosting.md, "Several servers behind HAProxy").
#
#   bash scripts/cluster.sh start K [--bind 0.0.0.0:8000] [--base-port 8100] [--resetdb]
#   bash scripts/cluster.sh status | check | stop
#   bash scripts/cluster.sh restart sN          # one server again (after a crash), its data kept
#   bash scripts/cluster.sh sessions CONFIG N [--room online] [--set key=value]  # N participants per server
#   bash scripts/cluster.sh export OUTDIR       # every server's exports, merged into OUTDIR/*.csv
#
# Server sN runs on 127.0.0.1:BASE+N with database <db>_sN (created if missing, tables created when new;
# --resetdb wipes them) in the PostgreSQL of DATABASE_URL; HAProxy listens on --bind. Run folder:
# CLUSTER_DIR (default .cluster/): haproxy.cfg, cluster.json, logs. Reads .env.production (or ENV_FILE)
# like prodserver.sh; variables already set win. `check` exits 1 and names the problem when any process
# is down, a server does not answer or HAProxy does not see every server UP.
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_FILE=${ENV_FILE:-.env.production}
export CLUSTER_DIR=${CLUSTER_DIR:-.cluster}

die() { echo "cluster.sh: $*" >&2; exit 1; }

if [ -f "$ENV_FILE" ]; then
  saved=$(export -p)  # the caller's environment wins over the file
  # shellcheck disable=SC1090
  source "$ENV_FILE"
  eval "$saved"
fi

case "${1:-}" in
  start)
    [ -n "${2:-}" ] || die "start needs the number of servers: start K"
    command -v haproxy >/dev/null || die "haproxy is not installed: apt-get install haproxy"
    case "${DATABASE_URL:-}" in
      postgres://*|postgresql://*) ;;
      *) die "DATABASE_URL must be PostgreSQL (run 'sudo bash scripts/postgres.sh setup')" ;;
    esac
    [ "${OTREE_AUTH_LEVEL:-STUDY}" = STUDY ] || die "OTREE_AUTH_LEVEL must be STUDY for a real study"
    exec python3 -m hosting.cluster "$@" ;;
  stop|status|check|restart|sessions|export)
    exec python3 -m hosting.cluster "$@" ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
esac
