#!/usr/bin/env bash
# bench/migrate.sh: small migrations applied from scratch by `warden migrate up`, by one
# psql session running the same SQL (the cost of the DDL itself, the floor), by dbmate and
# by node-pg-migrate, on two sets: 300 tiny migrations (one CREATE TABLE each: the fixed
# cost per migration) and 1,000 small ones (a table and an index each); then `warden
# migrate status` and `verify` with 10,000 applied migrations. Each tool gets a fresh
# database per run; RUNS (default 3) runs each, medians reported. SETS="tiny" or
# SETS="small" runs one set only; STATUS=0 skips the status part.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-3}
N=${N:-1000}
N_TINY=${N_TINY:-300}
N_STATUS=${N_STATUS:-10000}
SETS=${SETS:-tiny small}
STATUS=${STATUS:-1}
node_bin="$bench_root/build/bench-node/node_modules/.bin"
for tool in dbmate node-pg-migrate; do
  [ -x "$node_bin/$tool" ] || { echo "bench/migrate: $tool missing; run scripts/install-deps.sh --bench" >&2; exit 1; }
done

bench_cluster
files="$BENCH_WORK/files"
# make_set NAME COUNT SQL-TEMPLATE: the same migrations for each tool (@N@: the number).
make_set() {
  local set=$1 count=$2 template=$3 i v up
  mkdir -p "$files/$set/warden" "$files/$set/dbmate" "$files/$set/npm"
  for i in $(seq 1 "$count"); do
    v=$(printf '%04d' "$i")
    up=${template//@N@/$i}
    printf '%s\n' "$up" >"$files/$set/warden/${v}_t$i.sql"
    printf '%s\n' "$up" >>"$files/$set/all.sql"
    printf -- '-- migrate:up\n%s\n\n-- migrate:down\nDROP TABLE t%s;\n' "$up" "$i" >"$files/$set/dbmate/${v}_t$i.sql"
    printf -- '-- Up Migration\n%s\n\n-- Down Migration\nDROP TABLE t%s;\n' "$up" "$i" >"$files/$set/npm/${v}_t$i.sql"
  done
}
make_set tiny "$N_TINY" 'CREATE TABLE t@N@ (id int);'
make_set small "$N" 'CREATE TABLE t@N@ (id bigint PRIMARY KEY, v text);
CREATE INDEX t@N@_v ON t@N@ (v);'
mkdir -p "$files/status"
for i in $(seq 1 "$N_STATUS"); do
  printf 'SELECT %d;\n' "$i" >"$files/status/$(printf '%05d' "$i")_m$i.sql"
done

fresh_db() { psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"; }
# Seconds taken by a command (the command's output is discarded).
timed() {
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}'
}
url() { echo "postgres://$PGUSER@/$1?host=$PGHOST&port=$PGPORT&sslmode=disable"; }

# The machine is shared and noisy: next to the ratio of medians, the median of the ratios
# within each run (the tools of one run ran minutes apart at most).
paired() {
  local -n ours=$1 peer=$2
  local r=() i
  for i in "${!ours[@]}"; do r+=("$(awk -v a="${ours[$i]}" -v b="${peer[$i]}" 'BEGIN {printf "%.3f", a / b}')"); done
  median "${r[@]}"
}

# measure SET COUNT: each tool on the set, RUNS times, and the ratios.
measure() {
  local set=$1 count=$2 run
  local -a t_psql=() t_warden=() t_dbmate=() t_npm=()
  for run in $(seq 1 "$RUNS"); do
    fresh_db floor
    t_psql+=("$(timed psql -X -q -v ON_ERROR_STOP=1 -d floor -f "$files/$set/all.sql")")

    fresh_db wardendb
    psql -X -q -d wardendb -c 'CREATE EXTENSION pg_warden'
    t_warden+=("$(timed "$WARDEN" migrate up -q -d wardendb --dir "$files/$set/warden")")
    [ "$(psql -X -A -t -d wardendb -c 'SELECT count(*) FROM warden.migrations')" = "$count" ]

    fresh_db dbmatedb
    t_dbmate+=("$(timed env DATABASE_URL="postgres://$PGUSER@/dbmatedb?socket=$PGHOST&port=$PGPORT&sslmode=disable" \
      "$node_bin/dbmate" --migrations-dir "$files/$set/dbmate" --no-dump-schema up)")

    fresh_db npmdb
    t_npm+=("$(timed env DATABASE_URL="$(url npmdb)" "$node_bin/node-pg-migrate" up -m "$files/$set/npm" --no-verbose)")
    [ "$(psql -X -A -t -d npmdb -c 'SELECT count(*) FROM pgmigrations')" = "$count" ]
    echo "$set run $run: psql ${t_psql[-1]} s, warden ${t_warden[-1]} s, dbmate ${t_dbmate[-1]} s, node-pg-migrate ${t_npm[-1]} s"
  done
  local warden_s
  warden_s=$(median "${t_warden[@]}")
  ratio_line migrate_up_${count}_${set}_vs_psql "$warden_s" "$(median "${t_psql[@]}")" s \
    "target <= 1.2; paired median $(paired t_warden t_psql)"
  ratio_line migrate_up_${count}_${set}_vs_dbmate "$warden_s" "$(median "${t_dbmate[@]}")" s \
    "target < 1; paired median $(paired t_warden t_dbmate)"
  ratio_line migrate_up_${count}_${set}_vs_node_pg_migrate "$warden_s" "$(median "${t_npm[@]}")" s \
    "target < 1; paired median $(paired t_warden t_npm)"
}
for set in $SETS; do
  case $set in
    tiny) measure tiny "$N_TINY" ;;
    small) measure small "$N" ;;
  esac
done
[ "$STATUS" = 1 ] || exit 0

# 10,000 applied migrations; the setup itself need not be durable.
fresh_db statusdb
psql -X -q -d statusdb -c 'CREATE EXTENSION pg_warden'
PGOPTIONS='-c synchronous_commit=off' "$WARDEN" migrate up -q -d statusdb --dir "$files/status"
declare -a t_status t_verify
for run in 1 2 3 4 5; do
  t_status+=("$(timed "$WARDEN" migrate status -d statusdb --dir "$files/status")")
  t_verify+=("$(timed "$WARDEN" migrate verify -d statusdb --dir "$files/status")")
done
status_ms=$(awk -v s="$(median "${t_status[@]}")" 'BEGIN {printf "%.0f", s * 1000}')
verify_ms=$(awk -v s="$(median "${t_verify[@]}")" 'BEGIN {printf "%.0f", s * 1000}')
ratio_line migrate_status_${N_STATUS}_vs_target "$status_ms" 200 ms "(peer = the 200 ms target)"
ratio_line migrate_verify_${N_STATUS}_vs_target "$verify_ms" 200 ms "(peer = the 200 ms target)"
