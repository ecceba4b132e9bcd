#!/usr/bin/env bash
# make demo: a walk through pg_warden on a throwaway cluster (the default), or on an
# existing server when PGHOST or DATABASE_URL is set (the demo then works in a database
# of its own, warden_demo, which it drops at the end).
# Each capability adds its step to scripts/demo.d/ (run in name order).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export WARDEN="$root/build/utility/warden"

bold() { if [ -t 1 ]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi; }
export -f bold

if [ -z "${PGHOST:-}" ] && [ -z "${DATABASE_URL:-}" ]; then
  work=$(mktemp -d /tmp/pg_warden_demo.XXXXXX)
  trap '"$root/tests/harness/stop-clusters.sh" "$work"; rm -rf "$work"' EXIT
  trap 'exit 130' INT TERM
  bold "Starting a throwaway PostgreSQL 15 cluster in $work"
  eval "$("$root/tests/harness/cluster.sh" start "$work")"
  export DEMO_WORK="$work"
else
  bold "Using the existing server (${DATABASE_URL:-host $PGHOST})"
  if [ -n "${DATABASE_URL:-}" ]; then export PGDATABASE=$(psql "$DATABASE_URL" -XAtc 'select current_database()'); fi
  psql -X -q ${DATABASE_URL:+"$DATABASE_URL"} -c 'DROP DATABASE IF EXISTS warden_demo' -c 'CREATE DATABASE warden_demo'
  export PGDATABASE=warden_demo
  unset DATABASE_URL
  trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS warden_demo WITH (FORCE)"' EXIT
fi
psql -X -q -At -c "SELECT version()"

for step in "$root"/scripts/demo.d/*.sh; do
  bash "$step"
done

bold "Done"
