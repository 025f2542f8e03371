#!/usr/bin/env bash
# Services the end-to-end tests use: a PostgreSQL server on 127.0.0.1 (multi-machine storage tests) and
# Debian's Chromium (HTML report screenshots). Installs what is missing; prints the variables to export.
set -euo pipefail
need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "ci: installing ${need[*]}" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main"' | grep -q .; then
  pg_createcluster "$ver" main >&2
fi
pg_ctlcluster "$ver" main start >&2 2>/dev/null || true
port=$(pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main" {print $3}')
psql_as_postgres() { su postgres -c "psql -p $port -qtAc \"$1\""; }
for i in $(seq 1 30); do psql_as_postgres "SELECT 1" >/dev/null 2>&1 && break; sleep 1; done
psql_as_postgres "SELECT 1 FROM pg_roles WHERE rolname='tuner'" | grep -q 1 || psql_as_postgres "CREATE ROLE tuner LOGIN PASSWORD 'tuner'"
psql_as_postgres "DROP DATABASE IF EXISTS tuner_test" >&2
psql_as_postgres "CREATE DATABASE tuner_test OWNER tuner" >&2
echo "export TUNER_TEST_POSTGRES_URL=postgresql+psycopg2://tuner:tuner@127.0.0.1:$port/tuner_test"
