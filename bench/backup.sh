#!/usr/bin/env bash
# Backup benchmark on a pgbench database (SCALE, default 100 = ~1.5 GB):
#   physical: warden backup (gzip -6, gzip -1) vs pg_basebackup -Ft -z -X fetch vs
#             pgBackRest (local repository, gz, process-max 2)
#   restore:  warden restore vs untar of pg_basebackup's archive vs pgBackRest restore
#   logical:  warden backup --logical / warden restore --database vs bare
#             pg_dump -Fd -j 2 / pg_restore -j 2
#   incremental: after a full backup and an UPDATE of 5% of pgbench_accounts (a
#             contiguous aid range), warden backup create --incremental vs the full and
#             vs pgBackRest --type=incr; the chain restored by warden vs pgBackRest's
#             restore of its incremental
# One run of each physical comparison and three alternating rounds of the logical ones
# (the machine is shared); prints one ratio line per comparison. PARTS=incremental runs
# only the incremental comparison (SCALE=20 or so on a small machine).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SCALE=${SCALE:-100}

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }
size_mb() { du -sb "$@" | awk '{s += $1} END {printf "%.1f", s / 1048576}'; }

# pgBackRest's repository and configuration exist before the cluster, whose
# archive_command points at them.
brw=$(mktemp -d /tmp/pg_warden_bench_pgbr.XXXXXX)
chmod 755 "$brw"
bench_cluster "archive_mode = on" \
  "archive_command = 'pgbackrest --config=$brw/pgbackrest.conf --stanza=bench archive-push %p'" \
  "wal_level = replica" "max_wal_senders = 4"
trap '"$bench_root/tests/harness/stop-clusters.sh" "$BENCH_WORK"; rm -rf "$BENCH_WORK" "$brw"' EXIT
data=$(psql -XAtc 'SHOW data_directory')
cat >"$brw/pgbackrest.conf" <<CONF
[global]
repo1-path=$brw/repo
log-path=$brw/log
lock-path=$brw/lock
compress-type=gz
process-max=2
start-fast=y
log-level-console=warn

[bench]
pg1-path=$data
pg1-socket-path=$PGHOST
pg1-port=$PGPORT
pg1-user=postgres
CONF
mkdir -p "$brw/repo" "$brw/log" "$brw/lock"
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$brw"
pgbr() { as_pg pgbackrest --config="$brw/pgbackrest.conf" --stanza=bench "$@"; }

echo "pgbench -i -s $SCALE"
t=$(now); pgbench -i -q -s "$SCALE" >/dev/null 2>&1; echo "  initialised in $(since "$t") s"
# A database pg_warden looks after: backups are recorded in it, and the logical backup
# counts rows with warden.count_rows (both pg_dump runs dump the extension alike).
psql -Xq -c 'CREATE EXTENSION pg_warden'
psql -XAtc "SELECT 'database size: ' || pg_size_pretty(pg_database_size(current_database()))"
pgbr stanza-create >/dev/null

out="$BENCH_WORK/out"
mkdir -p "$out"
[ "$(id -u)" -eq 0 ] && chown postgres: "$out"

# Each timed run starts after a checkpoint and with the WAL archived (pgBackRest's
# archive-push compresses every segment of the load), so none pays for another's work.
ckpt() {
  psql -XAtqc CHECKPOINT
  local seg
  seg=$(psql -XAtc "SELECT pg_walfile_name(pg_switch_wal())")
  until [ "$(psql -XAtc "SELECT coalesce(last_archived_wal >= '$seg', false) FROM pg_stat_archiver")" = t ]; do
    sleep 0.5
  done
}
incremental_part() {
  local inc="$out/inc" wf bf wi bi accounts
  rm -rf "$inc"; mkdir -p "$inc"; [ "$(id -u)" -eq 0 ] && chown postgres: "$inc"
  ckpt; t=$(now); "$WARDEN" backup create --dir "$inc/warden" --quiet >/dev/null; wf=$(since "$t")
  ckpt; t=$(now); pgbr backup --type=full >/dev/null; bf=$(since "$t")
  accounts=$(psql -XAtc 'SELECT count(*) FROM pgbench_accounts')
  t=$(now)
  psql -Xq -c "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= $accounts / 20"
  echo "  updated $((accounts / 20)) of $accounts accounts rows in $(since "$t") s"
  ckpt; t=$(now); "$WARDEN" backup create --dir "$inc/warden" --incremental --quiet >"$inc/id"; wi=$(since "$t")
  ckpt; t=$(now); pgbr backup --type=incr >/dev/null; bi=$(since "$t")
  local id wi_size bi_size blocks_size full_size
  id=$(cat "$inc/id")
  wi_size=$(size_mb "$inc/warden/$id")
  blocks_size=$(size_mb "$inc/warden/$id"/blocks.tar*)
  full_size=$(size_mb "$(ls -d "$inc"/warden/*/ | head -n 1)")
  bi_size=$(size_mb "$(ls -d "$brw"/repo/backup/bench/*I | tail -n 1)")
  echo "incremental: warden full $wf s $full_size MB | warden incremental $wi s $wi_size MB" \
       "(changed blocks compressed $blocks_size MB) | pgBackRest full $bf s, incr $bi s $bi_size MB"
  ratio_line incremental_time_vs_full "$wi" "$wf" s "target <= 0.25"
  ratio_line incremental_size_vs_changed_blocks "$wi_size" "$blocks_size" MB \
    "target <= 1.5 (the rest: non-relation files, FSM/VM forks, the backup's WAL)"
  ratio_line incremental_time_vs_pgbackrest_incr "$wi" "$bi" s "target <= 1.0"
  ratio_line incremental_size_vs_pgbackrest_incr "$wi_size" "$bi_size" MB "target <= 1.0"
  local rws=() rbs=() order=(warden pgbr) tool d
  restore_chain_warden() { "$WARDEN" restore --dir "$inc/warden" "$id" --target "$inc/r_warden" --quiet; }
  restore_chain_pgbr() {
    mkdir -p "$inc/r_pgbr"; [ "$(id -u)" -eq 0 ] && chown postgres: "$inc/r_pgbr"
    pgbr restore --pg1-path="$inc/r_pgbr" >/dev/null
  }
  for round in $(seq 1 "${RESTORE_ROUNDS:-2}"); do
    rm -rf "$inc/r_warden" "$inc/r_pgbr"; sync
    for tool in "${order[@]}"; do
      t=$(now); "restore_chain_$tool"; d=$(since "$t"); sync
      case $tool in warden) rws+=("$d") ;; pgbr) rbs+=("$d") ;; esac
    done
    echo "  chain restore round $round (${order[*]}): warden ${rws[-1]} s, pgBackRest ${rbs[-1]} s"
    order=("${order[@]:1}" "${order[0]}")
  done
  ratio_line chain_restore_vs_pgbackrest "$(median "${rws[@]}")" "$(median "${rbs[@]}")" s "target <= 1.0"
  rm -rf "$inc"
}
if [ "${PARTS:-all}" = incremental ]; then
  incremental_part
  exit 0
fi

# ROUNDS alternating rounds (default 2): the machine is shared, load drifts, medians count.
w6s=() w1s=() pbs=() brs=()
for round in $(seq 1 "${ROUNDS:-2}"); do
  rm -rf "$out/warden6" "$out/warden1" "$out/pgbb"
  ckpt; t=$(now); "$WARDEN" backup create --dir "$out/warden6" --level 6 --quiet >"$out/id6"; w6s+=("$(since "$t")")
  ckpt; t=$(now); pg_basebackup -D "$out/pgbb" -Ft -z -X fetch -c fast; pbs+=("$(since "$t")")
  ckpt; t=$(now); pgbr backup --type=full >/dev/null; brs+=("$(since "$t")")
  ckpt; t=$(now); "$WARDEN" backup create --dir "$out/warden1" --level 1 --quiet >"$out/id1"; w1s+=("$(since "$t")")
  echo "  round $round: warden gzip-6 ${w6s[-1]} s, pg_basebackup -z ${pbs[-1]} s, pgBackRest ${brs[-1]} s, warden gzip-1 ${w1s[-1]} s"
done
w6=$(median "${w6s[@]}") w1=$(median "${w1s[@]}") pb=$(median "${pbs[@]}") br=$(median "${brs[@]}")
w6_size=$(size_mb "$out/warden6")
w1_size=$(size_mb "$out/warden1")
pb_size=$(size_mb "$out/pgbb")
br_size=$(size_mb "$(ls -d "$brw"/repo/backup/bench/*F | tail -n 1)")
echo "physical: warden gzip-6 $w6 s $w6_size MB | warden gzip-1 $w1 s $w1_size MB |" \
     "pg_basebackup -z $pb s $pb_size MB | pgBackRest gz $br s $br_size MB"

ratio_line backup_gzip6_vs_pg_basebackup "$w6" "$pb" s "target <= 0.667 (1.5x faster)"
ratio_line backup_gzip6_size_vs_pg_basebackup "$w6_size" "$pb_size" MB "target <= 1.05"
ratio_line backup_gzip1_vs_pg_basebackup "$w1" "$pb" s "target <= 0.667"
ratio_line backup_gzip1_size_vs_pg_basebackup "$w1_size" "$pb_size" MB "target <= 1.05"
ratio_line backup_gzip6_vs_pgbackrest "$w6" "$br" s "target <= 1.0"
ratio_line backup_gzip1_vs_pgbackrest "$w1" "$br" s "target <= 1.0"

# Restores, each into a fresh directory (fsync'd by each tool as it sees fit; untar is
# followed by sync -f). Three rounds, the order rotated each round (the one after another
# meets its writeback), medians.
restore_warden() { "$WARDEN" restore --dir "$out/warden6" "$(cat "$out/id6")" --target "$out/r_warden" --quiet; }
restore_untar() { mkdir "$out/r_untar" && tar -xzf "$out/pgbb/base.tar.gz" -C "$out/r_untar" && sync -f "$out/r_untar"; }
restore_pgbr() {
  mkdir -p "$out/r_pgbr"; [ "$(id -u)" -eq 0 ] && chown postgres: "$out/r_pgbr"
  pgbr restore --pg1-path="$out/r_pgbr" >/dev/null
}
rws=() rus=() rbs=()
order=(warden untar pgbr)
for round in $(seq 1 "${RESTORE_ROUNDS:-3}"); do
  rm -rf "$out/r_warden" "$out/r_untar" "$out/r_pgbr"; sync
  for tool in "${order[@]}"; do
    t=$(now); "restore_$tool"; d=$(since "$t"); sync
    case $tool in warden) rws+=("$d") ;; untar) rus+=("$d") ;; pgbr) rbs+=("$d") ;; esac
  done
  echo "  restore round $round (${order[*]}): warden ${rws[-1]} s, untar ${rus[-1]} s, pgBackRest ${rbs[-1]} s"
  order=("${order[@]:1}" "${order[0]}")
done
rw=$(median "${rws[@]}") ru=$(median "${rus[@]}") rb=$(median "${rbs[@]}")
echo "restore: warden $rw s | untar $ru s | pgBackRest $rb s"
ratio_line restore_vs_untar "$rw" "$ru" s "target <= 1.0"
ratio_line restore_vs_pgbackrest "$rw" "$rb" s "target <= 1.0"
rm -rf "$out/r_warden" "$out/r_untar" "$out/r_pgbr" "$out/pgbb" "$out/warden1"

# Logical: the same pg_dump/pg_restore, with and without pg_warden around them. Three
# rounds, the order swapped each round (whichever runs second finds the other's pages
# cached and its checkpoint behind it); medians of each and of the paired ratios.
db=$(psql -XAtc 'SELECT current_database()')
LOGICAL_RUNS=${LOGICAL_RUNS:-3}
warden_dump() { "$WARDEN" backup create --dir "$out/logical" --logical --database "$db" -j 2 --quiet >"$out/idl"; }
plain_dump() { rm -rf "$out/pgdump"; pg_dump -Fd -j 2 -f "$out/pgdump" "$db"; }
warden_restore() {
  PGOPTIONS='-c client_min_messages=warning' psql -Xq -c 'DROP DATABASE IF EXISTS r_warden' -c 'CREATE DATABASE r_warden'
  "$WARDEN" restore --dir "$out/logical" "$(cat "$out/idl")" --database r_warden -j 2 --quiet
}
plain_restore() {
  PGOPTIONS='-c client_min_messages=warning' psql -Xq -c 'DROP DATABASE IF EXISTS r_plain' -c 'CREATE DATABASE r_plain'
  pg_restore -j 2 --exit-on-error -d r_plain "$out/pgdump"
}
# timed_pair OURS PEER ROUND: runs both (ours first in odd rounds), prints "ours peer".
timed_pair() {
  local t a b
  psql -Xq -c CHECKPOINT
  if [ $(($3 % 2)) = 1 ]; then
    t=$(now); "$1"; a=$(since "$t"); psql -Xq -c CHECKPOINT; t=$(now); "$2"; b=$(since "$t")
  else
    t=$(now); "$2"; b=$(since "$t"); psql -Xq -c CHECKPOINT; t=$(now); "$1"; a=$(since "$t")
  fi
  echo "$a $b"
}
lw=() lp=() lrw=() lrp=() dump_ratio=() restore_ratio=()
for round in $(seq "$LOGICAL_RUNS"); do
  read -r a b < <(timed_pair warden_dump plain_dump "$round")
  lw+=("$a") lp+=("$b") dump_ratio+=("$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", a / b}')")
  read -r a b < <(timed_pair warden_restore plain_restore "$round")
  lrw+=("$a") lrp+=("$b") restore_ratio+=("$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", a / b}')")
  echo "logical round $round: warden dump ${lw[-1]} s, pg_dump ${lp[-1]} s; warden restore ${lrw[-1]} s, pg_restore ${lrp[-1]} s"
done
ratio_line logical_backup_vs_pg_dump "$(median "${lw[@]}")" "$(median "${lp[@]}")" s \
  "target <= 1.1; paired median $(median "${dump_ratio[@]}")"
ratio_line logical_restore_vs_pg_restore "$(median "${lrw[@]}")" "$(median "${lrp[@]}")" s \
  "target <= 1.1; paired median $(median "${restore_ratio[@]}")"

incremental_part
