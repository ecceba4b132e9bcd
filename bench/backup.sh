#!/usr/bin/env bash
# Backup benchmark on a pgbench database (SCALE, default 100 = ~1.5 GB):
#   physical: warden backup (gzip -6, gzip -1) vs pg_basebackup -Ft -z -X fetch vs
#             pgBackRest (local repository, gz, process-max 2)
#   restore:  warden restore vs untar of pg_basebackup's archive vs pgBackRest restore
#   logical:  warden backup --logical / warden restore --database vs bare
#             pg_dump -Fd -j 2 / pg_restore -j 2
# One run of each (the machine is shared); prints one ratio line per comparison.
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
ckpt; t=$(now); "$WARDEN" backup create --dir "$out/warden6" --level 6 --quiet >"$out/id6"; w6=$(since "$t")
w6_size=$(size_mb "$out/warden6")
ckpt; t=$(now); "$WARDEN" backup create --dir "$out/warden1" --level 1 --quiet >"$out/id1"; w1=$(since "$t")
w1_size=$(size_mb "$out/warden1")
ckpt; t=$(now); pg_basebackup -D "$out/pgbb" -Ft -z -X fetch -c fast; pb=$(since "$t")
pb_size=$(size_mb "$out/pgbb")
ckpt; t=$(now); pgbr backup --type=full >/dev/null; br=$(since "$t")
br_size=$(size_mb "$brw/repo/backup")
echo "physical: warden gzip-6 $w6 s $w6_size MB | warden gzip-1 $w1 s $w1_size MB |" \
     "pg_basebackup -z $pb s $pb_size MB | pgBackRest gz $br s $br_size MB"

ratio_line backup_gzip6_vs_pg_basebackup "$w6" "$pb" s "target <= 0.667 (1.5x faster)"
ratio_line backup_gzip6_size_vs_pg_basebackup "$w6_size" "$pb_size" MB "target <= 1.05"
ratio_line backup_gzip1_vs_pg_basebackup "$w1" "$pb" s "target <= 0.667"
ratio_line backup_gzip1_size_vs_pg_basebackup "$w1_size" "$pb_size" MB "target <= 1.05"
ratio_line backup_gzip6_vs_pgbackrest "$w6" "$br" s "target <= 1.0"
ratio_line backup_gzip1_vs_pgbackrest "$w1" "$br" s "target <= 1.0"

# Restores, each into a fresh directory (fsync'd by each tool as it sees fit).
t=$(now); "$WARDEN" restore --dir "$out/warden6" "$(cat "$out/id6")" --target "$out/r_warden" --quiet; rw=$(since "$t")
t=$(now); mkdir "$out/r_untar" && tar -xzf "$out/pgbb/base.tar.gz" -C "$out/r_untar" && sync -f "$out/r_untar"; ru=$(since "$t")
mkdir -p "$out/r_pgbr"; [ "$(id -u)" -eq 0 ] && chown postgres: "$out/r_pgbr"
t=$(now); pgbr restore --pg1-path="$out/r_pgbr" >/dev/null; rb=$(since "$t")
echo "restore: warden $rw s | untar $ru s | pgBackRest $rb s"
ratio_line restore_vs_untar "$rw" "$ru" s "target <= 1.0"
ratio_line restore_vs_pgbackrest "$rw" "$rb" s "target <= 1.0"
rm -rf "$out/r_warden" "$out/r_untar" "$out/r_pgbr" "$out/pgbb" "$out/warden1"

# Logical: the same pg_dump/pg_restore, with and without pg_warden around them.
db=$(psql -XAtc 'SELECT current_database()')
t=$(now); "$WARDEN" backup create --dir "$out/logical" --logical --database "$db" -j 2 --quiet >"$out/idl"; lw=$(since "$t")
t=$(now); pg_dump -Fd -j 2 -f "$out/pgdump" "$db"; lp=$(since "$t")
psql -Xq -c 'DROP DATABASE IF EXISTS r_warden' -c 'DROP DATABASE IF EXISTS r_plain' -c 'CREATE DATABASE r_warden' -c 'CREATE DATABASE r_plain'
t=$(now); "$WARDEN" restore --dir "$out/logical" "$(cat "$out/idl")" --database r_warden -j 2 --quiet; lrw=$(since "$t")
t=$(now); pg_restore -j 2 --exit-on-error -d r_plain "$out/pgdump"; lrp=$(since "$t")
echo "logical: warden dump $lw s, restore $lrw s | pg_dump $lp s, pg_restore $lrp s"
ratio_line logical_backup_vs_pg_dump "$lw" "$lp" s "target <= 1.1"
ratio_line logical_restore_vs_pg_restore "$lrw" "$lrp" s "target <= 1.1"
