#!/usr/bin/env bash
# Makes the services Onyx's tests and demo need available, then runs the given command with
# their settings exported:
#   PostgreSQL on 127.0.0.1:5432 (started if stopped; installed with apt when missing and root);
#     a password comes from PGPASSWORD or ~/.pgpass, which onyx and the tests honour as psql does
#   moto's AWS emulator (S3, Secrets Manager, …) on a free loopback port, stopped afterwards
#   the Python tools (moto, pyarrow, duckdb): the Python on PATH, else a virtualenv in .services/
# Usage: .ci/services.sh [--no-aws] <command> [args…]   e.g. .ci/services.sh cargo test --workspace
set -euo pipefail

log() { echo "services: $*" >&2; }
die() { echo "services: ERROR: $*" >&2; exit 1; }

pg_port=${PGPORT:-5432}
pg_ready() { pg_isready -q -h 127.0.0.1 -p "$pg_port" 2>/dev/null; }

ensure_postgres() {
  if command -v pg_isready >/dev/null && pg_ready; then return; fi
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
    log "starting the installed PostgreSQL cluster"
    for version in /etc/postgresql/*; do
      pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" main start 2>/dev/null || true
    done
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "PostgreSQL is missing; installing it with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null || {
      apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; }
    for version in /etc/postgresql/*; do
      pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" main start || true
    done
  else
    die "PostgreSQL is not running on 127.0.0.1:$pg_port and cannot be installed from here (not root, or no apt-get).
  Install and start it (e.g. 'sudo apt-get install postgresql'), or point PGPORT at a running server."
  fi
  for _ in $(seq 1 30); do pg_ready && return; sleep 1; done
  die "PostgreSQL did not become ready on 127.0.0.1:$pg_port"
}

# The URL of a superuser connection (without a database name); creates the role if needed.
postgres_url() {
  local user=${PGUSER:-$(id -un)}
  if psql -h 127.0.0.1 -p "$pg_port" -U "$user" -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
    echo "postgres://$user@127.0.0.1:$pg_port"; return
  fi
  if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1; then
    log "creating the PostgreSQL role $user (superuser, password 'onyx') for local use"
    su postgres -c "psql -q -d postgres -c \"DO \\\$\\\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN CREATE ROLE \\\"$user\\\" LOGIN SUPERUSER; END IF;
      ALTER ROLE \\\"$user\\\" PASSWORD 'onyx'; END \\\$\\\$;\"" >/dev/null
    echo "postgres://$user:onyx@127.0.0.1:$pg_port"; return
  fi
  die "cannot log in to PostgreSQL as $user; set PGUSER to a superuser role that can"
}

# The Python tools come from the Python on PATH when it has them all, else from a project
# virtualenv (.services/venv) that pip fills — never the system Python, which PEP 668 protects on
# current Debian and Ubuntu, and no root needed.
#   ensure_python_tools <import names> -- <pip requirements>
ensure_python_tools() {
  local imports=() requirements=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do imports+=("$1"); shift; done
  shift
  requirements=("$@")
  local check="import $(IFS=,; echo "${imports[*]}")"
  python3 -c "$check" 2>/dev/null && return
  local venv="$PWD/.services/venv"
  if [ ! -x "$venv/bin/python" ]; then
    log "creating a virtualenv for the Python tools: $venv"
    python3 -m venv "$venv" >&2 || die "python3 cannot create a virtualenv at $venv: install the venv module
  (Debian/Ubuntu: 'sudo apt-get install python3-venv'), or put a Python with ${imports[*]} on PATH."
  fi
  export PATH="$venv/bin:$PATH"
  hash -r
  python3 -c "$check" 2>/dev/null && return
  log "installing ${requirements[*]} into $venv"
  python3 -m pip install -q --disable-pip-version-check "${requirements[@]}" >&2 \
    || die "pip could not install ${requirements[*]} into $venv"
  python3 -c "$check" || die "${imports[*]} still missing after installing into $venv"
}

ensure_moto() {
  ensure_python_tools moto flask flask_cors -- 'moto[server]>=5,<6'
  command -v moto_server >/dev/null || die "moto_server is not on PATH after installing moto[server]"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p .services
  moto_server -H 127.0.0.1 -p "$port" >.services/moto.log 2>&1 &
  moto_pid=$!
  for _ in $(seq 1 60); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
      export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
      return
    fi
    kill -0 "$moto_pid" 2>/dev/null || die "moto_server exited: $(tail -5 .services/moto.log)"
    sleep 0.5
  done
  die "moto_server did not answer on port $port"
}

# pyarrow: the independent Parquet reader the tests check the transform's output with.
# DuckDB: the engine the lake test (and the demo) runs lake/views/*.sql (Athena's SQL) with over
# a local processed directory.
ensure_test_tools() {
  ensure_python_tools pyarrow.parquet duckdb -- 'pyarrow>=14' 'duckdb>=1.1,<3'
}

moto_pid=
cleanup() { [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null || true; }
trap cleanup EXIT

# --no-aws: PostgreSQL and DuckDB only (the demo touches no AWS API, so it needs no moto).
with_aws=1
if [ "${1:-}" = --no-aws ]; then with_aws=; shift; fi

ensure_postgres
ONYX_TEST_PG_URL=$(postgres_url)
export ONYX_TEST_PG_URL
if [ -n "$with_aws" ]; then
  ensure_moto
  ensure_test_tools
  # Dummy credentials for the emulator only; real runs use the normal AWS credential chain.
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=eu-west-2 AWS_DEFAULT_REGION=eu-west-2
  unset AWS_PROFILE AWS_SESSION_TOKEN
  log "PostgreSQL at $(echo "$ONYX_TEST_PG_URL" | sed 's#:[^:@/]*@#:***@#'), moto at $AWS_ENDPOINT_URL"
else
  ensure_python_tools duckdb -- 'duckdb>=1.1,<3'
  log "PostgreSQL at $(echo "$ONYX_TEST_PG_URL" | sed 's#:[^:@/]*@#:***@#')"
fi

[ $# -gt 0 ] || die "give a command to run"
"$@"
