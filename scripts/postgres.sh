#!/usr/bin/env bash
# PostgreSQL for a real study on one lab machine (Debian), and the environment file prodserver.sh reads.
#
#   sudo bash scripts/postgres.sh setup     # install PostgreSQL, start it, create role + database "otree",
#                                           # write .env.production (DATABASE_URL and fresh secrets, mode 600)
#   sudo bash scripts/postgres.sh start|stop|status
#
# setup is idempotent: an existing role keeps working (its password is reset and written anew), an
# existing .env.production keeps its secrets. Runs Debian's own cluster (pg_ctlcluster), so it also
# works where systemd is absent (containers).
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_FILE=${ENV_FILE:-.env.production}
DB_NAME=${DB_NAME:-otree}
DB_USER=${DB_USER:-otree}

die() { echo "postgres.sh: $*" >&2; exit 1; }

cluster() {  # "<version> <name> <port>" of the first cluster Debian knows
  pg_lsclusters --no-header 2>/dev/null | awk 'NR==1 {print $1, $2, $3}'
}

install() {
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed; run as root to install it"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q --no-install-recommends postgresql
  fi
  [ -n "$(cluster)" ] || die "no PostgreSQL cluster; create one with: pg_createcluster --start <version> main"
}

start() {
  read -r version name port <<<"$(cluster)"
  pg_ctlcluster "$version" "$name" status >/dev/null 2>&1 || pg_ctlcluster "$version" "$name" start
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p "$port" && return 0
    sleep 0.5
  done
  die "PostgreSQL $version/$name did not accept connections on port $port"
}

psql_admin() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$1" -d postgres -c "$2"; }

setup() {
  install
  start
  read -r _ _ port <<<"$(cluster)"
  password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  if runuser -u postgres -- psql -X -tA -p "$port" -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname='$DB_USER'" | grep -q 1; then
    psql_admin "$port" "ALTER ROLE $DB_USER LOGIN PASSWORD '$password'"
  else
    psql_admin "$port" "CREATE ROLE $DB_USER LOGIN PASSWORD '$password'"
  fi
  if ! runuser -u postgres -- psql -X -tA -p "$port" -d postgres -c "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'" | grep -q 1; then
    psql_admin "$port" "CREATE DATABASE $DB_NAME OWNER $DB_USER ENCODING 'UTF8' TEMPLATE template0"
  fi
  url="postgresql://$DB_USER:$password@127.0.0.1:$port/$DB_NAME"
  secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
  touch "$ENV_FILE" && chmod 600 "$ENV_FILE"
  # Keep existing secrets (a new admin password would lock out a running study); replace the URL.
  set_var() { grep -q "^export $1=" "$ENV_FILE" || echo "export $1=$2" >>"$ENV_FILE"; }
  sed -i '/^export DATABASE_URL=/d' "$ENV_FILE"
  echo "export DATABASE_URL=$url" >>"$ENV_FILE"
  set_var OTREE_PRODUCTION 1
  set_var OTREE_AUTH_LEVEL STUDY
  set_var OTREE_ADMIN_PASSWORD "$(secret)"
  set_var OTREE_SECRET_KEY "$(secret)"
  set_var OTREE_REST_KEY "$(secret)"
  echo "PostgreSQL ready: database $DB_NAME, role $DB_USER, port $port."
  echo "Wrote $ENV_FILE (DATABASE_URL, OTREE_* secrets; admin user 'admin', password in the file)."
  echo "Next: bash scripts/prodserver.sh resetdb && bash scripts/prodserver.sh start"
}

case "${1:-}" in
  setup) setup ;;
  start) install; start; echo "PostgreSQL running." ;;
  stop) read -r version name _ <<<"$(cluster)"; pg_ctlcluster "$version" "$name" stop ;;
  status) read -r version name _ <<<"$(cluster)"; pg_ctlcluster "$version" "$name" status ;;
  *) sed -n '2,10p' "$0"; exit 2 ;;
esac
