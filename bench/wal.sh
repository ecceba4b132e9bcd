#!/usr/bin/env bash
# WAL archiving benchmark, one run:
#   throughput: pgbench write TPS with no receiver, `warden wal receive` (async and
#               --synchronous) and pg_receivewal (async and --synchronous); medians of RUNS
#               runs of DURATION seconds each
#   RPO:        a writer logs every acknowledged commit; the primary is killed with -9
#               under load; a base backup plus `wal recovery-settings --latest` is
#               restored and the acknowledged commits missing from it are counted
#               (synchronous: target 0; async: target under one second of commits)
#   push cost:  `wal push` time per 16 MB segment (pgbench WAL), with and without
#               --encrypt, medians of PUSH_ROUNDS alternating rounds; PUSH_ONLY=1 stops there
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SCALE=${SCALE:-10}
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-4}

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

bench_cluster "wal_level = replica" "max_wal_senders = 8" "max_replication_slots = 8"
bindir=$(dirname "$(command -v pg_ctl)")
data=$(psql -XAtc 'SHOW data_directory')
out="$BENCH_WORK/out"
mkdir -p "$out"
[ "$(id -u)" -eq 0 ] && chown postgres: "$out"
pgbench -i -q -s "$SCALE" >/dev/null 2>&1

# Push cost: real segments of the pgbench load, each round into a fresh archive.
segs="$out/segs"
mkdir -p "$segs"
current=$(psql -XAtc 'SELECT pg_walfile_name(pg_current_wal_lsn())')
for f in $(ls "$data/pg_wal" | grep -E '^[0-9A-F]{24}$' | sort | head -8); do
  [ "$f" \< "$current" ] && cp "$data/pg_wal/$f" "$segs/"
done
nsegs=$(ls "$segs" | wc -l)
printf 'warden wal push bench key\n' >"$out/push.key"; chmod 600 "$out/push.key"
push_round() {  # push_round DIR [ARGS]: milliseconds per segment
  local dir=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  for f in "$segs"/*; do "$WARDEN" wal push --dir "$dir" "$@" "$f" >/dev/null; done
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v n="$nsegs" 'BEGIN {printf "%.1f", (b - a) * 1000 / n}'
}
plain_ms=() enc_ms=()
for r in $(seq "${PUSH_ROUNDS:-5}"); do
  plain_ms+=("$(push_round "$out/push_plain_$r")")
  enc_ms+=("$(push_round "$out/push_enc_$r" --encrypt --key-file "$out/push.key")")
  rm -rf "$out/push_plain_$r" "$out/push_enc_$r"
done
echo "push ($nsegs segments per round): plain ms/segment ${plain_ms[*]}; encrypted ${enc_ms[*]}"
ratio_line wal_push_encrypted_vs_plain "$(median "${enc_ms[@]}")" "$(median "${plain_ms[@]}")" ms/segment \
  "cost of --encrypt (AES-256-GCM + PBKDF2 per file)"
[ "${PUSH_ONLY:-0}" = 1 ] && exit 0

receiver_pid=
start_receiver() {  # start_receiver NAME COMMAND...: background, as the server account
  local name=$1; shift
  as_pg "$@" >"$out/$name.log" 2>&1 &
  receiver_pid=$!
  for _ in $(seq 100); do
    [ "$(psql -XAtc "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" = 1 ] && return
    sleep 0.1
  done
  echo "receiver $name did not start:"; cat "$out/$name.log"; exit 1
}
stop_receiver() {
  [ -n "$receiver_pid" ] || return 0
  pkill -TERM -P "$receiver_pid" 2>/dev/null || true
  kill -TERM "$receiver_pid" 2>/dev/null || true
  wait "$receiver_pid" 2>/dev/null || true
  receiver_pid=
}
sync_names() { psql -XAtqc "ALTER SYSTEM SET synchronous_standby_names = '$1'" -c "SELECT pg_reload_conf()" >/dev/null; }
drop_slots() { psql -XAtqc "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active" >/dev/null; }

tps_run() { pgbench -n -c "$CLIENTS" -j 2 -T "$DURATION" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'; }
# Configurations run interleaved, one pgbench run each per round, so the machine's
# drift (other load, checkpoints) spreads over all of them alike.
configs=(none warden_async pg_receivewal_async warden_sync pg_receivewal_sync)
# One slot per receiver and folder: each resumes where its own folder ends.
for slot in bench_rw_async bench_rw_sync; do
  psql -XAtqc "SELECT pg_create_physical_replication_slot('$slot', true)" >/dev/null
done
for d in w_async w_sync r_async r_sync; do mkdir -p "$out/$d"; done
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$out"
start_config() {
  case $1 in
  none) sync_names '' ;;
  warden_async) sync_names ''; start_receiver "$1" "$WARDEN" wal receive --dir "$out/w_async" --slot bench_w_async ;;
  warden_sync) sync_names warden_receiver; start_receiver "$1" "$WARDEN" wal receive --dir "$out/w_sync" --slot bench_w_sync \
    --application-name warden_receiver --synchronous ;;
  pg_receivewal_async) sync_names ''
    start_receiver "$1" "$bindir/pg_receivewal" -D "$out/r_async" --slot bench_rw_async -h "$PGHOST" -p "$PGPORT" ;;
  pg_receivewal_sync) sync_names pg_receivewal
    start_receiver "$1" "$bindir/pg_receivewal" -D "$out/r_sync" --slot bench_rw_sync --synchronous -h "$PGHOST" -p "$PGPORT" ;;
  esac
}
declare -A samples tps
echo "throughput: pgbench -c $CLIENTS -T $DURATION, $RUNS interleaved rounds, scale $SCALE"
tps_run >/dev/null  # warm-up
for round in $(seq "$RUNS"); do
  for c in "${configs[@]}"; do
    start_config "$c"
    samples[$c]+=" $(tps_run)"
    stop_receiver
  done
  echo "  round $round done"
done
for c in "${configs[@]}"; do
  # shellcheck disable=SC2086
  tps[$c]=$(median ${samples[$c]})
  echo "  $c: tps${samples[$c]} -> median ${tps[$c]}"
done
sync_names ''
drop_slots

# RPO: kill -9 of the primary under load, restore --latest, count lost acknowledged commits.
rpo() {  # rpo MODE (async|sync)
  local mode=$1
  local dir="$out/rpo_$mode" base="$out/base_$mode" restored="$out/restored_$mode"
  rm -rf "$dir" "$base" "$restored"
  [ "$mode" = sync ] && sync_names warden_receiver
  start_receiver "rpo_$mode" "$WARDEN" wal receive --dir "$dir" $([ "$mode" = sync ] && echo --synchronous)
  as_pg pg_basebackup -D "$base" -X none --checkpoint fast -h "$PGHOST" -p "$PGPORT" 2>/dev/null
  psql -XAtqc "DROP TABLE IF EXISTS acked; CREATE TABLE acked (id int PRIMARY KEY)"
  seq 1 2000000 | awk '{print "INSERT INTO acked VALUES (" $1 ");\n\\echo acked " $1}' >"$out/acked.sql"
  psql -Xq -v ON_ERROR_STOP=1 -f "$out/acked.sql" >"$out/acked_$mode.log" 2>/dev/null &
  local writer=$!
  # Background load as well, so the receiver has WAL to keep up with.
  pgbench -n -c 2 -T 60 >/dev/null 2>&1 &
  local load=$!
  sleep 5
  local start_count
  start_count=$(grep -c '^acked' "$out/acked_$mode.log" || true)
  kill -9 "$(head -1 "$data/postmaster.pid")"
  wait "$writer" 2>/dev/null || true
  wait "$load" 2>/dev/null || true
  sleep 1
  stop_receiver
  local acked max
  acked=$(grep -c '^acked' "$out/acked_$mode.log" || true)
  max=$(grep '^acked' "$out/acked_$mode.log" | tail -1 | awk '{print $2}')
  # Restore on another port and count what is missing.
  cp -a "$base" "$restored"
  as_pg "$WARDEN" wal recovery-settings --dir "$dir" -D "$restored" --latest
  local port=$((PGPORT + 1))
  as_pg "$bindir/pg_ctl" -D "$restored" -l "$out/restored_$mode.log" -w -t 300 \
    -o "-p $port -k $PGHOST -c synchronous_standby_names=''" start >/dev/null
  for _ in $(seq 600); do
    [ "$(psql -XAt -p "$port" -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ] && break
    sleep 0.2
  done
  local lost
  lost=$(psql -XAt -p "$port" -c "SELECT count(*) FROM generate_series(1, $max) g WHERE NOT EXISTS (SELECT FROM acked WHERE id = g)")
  as_pg "$bindir/pg_ctl" -D "$restored" -m fast stop >/dev/null
  # Per-second commit rate of the writer, to express the loss in seconds.
  local rate
  rate=$(awk -v n="$acked" 'BEGIN {printf "%.1f", n / 5}')
  echo "  rpo $mode: $acked commits acknowledged (~$rate/s), $lost lost after kill -9 and restore --latest"
  eval "lost_$mode=$lost rate_$mode=$rate"
  # Bring the primary back for the next run (crash recovery).
  as_pg "$bindir/pg_ctl" -D "$data" -l "$BENCH_WORK/cluster/server.log" -w \
    -o "-p $PGPORT -k $PGHOST -c listen_addresses=''" start >/dev/null
  sync_names ''
  drop_slots
  : "$start_count"
}
echo "RPO: kill -9 of the primary under load"
rpo sync
rpo async

ratio_line wal_tps_async_receiver_vs_none "${tps[warden_async]}" "${tps[none]}" tps "target >= 0.95"
ratio_line wal_tps_async_vs_pg_receivewal "${tps[warden_async]}" "${tps[pg_receivewal_async]}" tps "higher is better"
ratio_line wal_tps_sync_vs_pg_receivewal_sync "${tps[warden_sync]}" "${tps[pg_receivewal_sync]}" tps "higher is better"
ratio_line wal_tps_sync_receiver_vs_none "${tps[warden_sync]}" "${tps[none]}" tps "cost of RPO zero"
echo "rpo sync: lost $lost_sync acknowledged commits (target 0)"
awk -v l="$lost_async" -v r="$rate_async" 'BEGIN {printf "rpo async: lost %d acknowledged commits = %.3f s of commits (target < 1 s)\n", l, (r == 0 ? 0 : l / r)}'
