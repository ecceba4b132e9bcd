#!/usr/bin/env bash
# Backups to object storage, on a pgbench database (SCALE, default 100 = ~1.5 GB):
#   physical backup: warden backup create --dir s3://... (gzip -6 and gzip -1) vs
#                    pgBackRest backup --type=full with repo1-type=s3 (gz level 6, process-max 2)
#   restore:         warden restore --dir s3://... vs pgBackRest restore
# Both write to the same RADOS Gateway (tests/harness/ceph.sh, HTTPS: pgBackRest speaks only
# HTTPS to S3), one after the other, ROUNDS rounds (default 1) alternating which goes first;
# medians. Prints one ratio line per comparison.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SCALE=${SCALE:-100}

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }

cephdir=$(mktemp -d /tmp/pg_warden_bench_ceph.XXXXXX)
brw=$(mktemp -d /tmp/pg_warden_bench_pgbr.XXXXXX)
chmod 755 "$cephdir" "$brw"
t=$(now)
trap '"$bench_root/tests/harness/ceph.sh" stop "$cephdir"; rm -rf "$cephdir" "$brw"' EXIT
eval "$(CEPH_TLS=1 "$bench_root/tests/harness/ceph.sh" start "$cephdir")"
echo "Ceph + RADOS Gateway (HTTPS) up in $(since "$t") s, $(ps -o rss= -p "$(cat "$cephdir"/run/*.pid | tr '\n' ',' | sed 's/,$//')" | awk '{s += $1} END {printf "%.0f", s / 1024}') MB RSS"
url="s3://$WARDEN_S3_BUCKET/bench-warden"
port=${AWS_ENDPOINT_URL##*:}
# pgBackRest takes its keys from the environment too (never from the command line).
export PGBACKREST_REPO1_S3_KEY=$AWS_ACCESS_KEY_ID PGBACKREST_REPO1_S3_KEY_SECRET=$AWS_SECRET_ACCESS_KEY

# The archive feeds both: pgBackRest's backup waits for its WAL, warden's restore replays it.
bench_cluster "archive_mode = on" \
  "archive_command = 'pgbackrest --config=$brw/pgbackrest.conf --stanza=bench archive-push %p && \"$WARDEN\" wal push --dir $url %p'" \
  "wal_level = replica" "max_wal_senders = 4"
trap '"$bench_root/tests/harness/ceph.sh" stop "$cephdir"; "$bench_root/tests/harness/stop-clusters.sh" "$BENCH_WORK"; rm -rf "$BENCH_WORK" "$brw" "$cephdir"' EXIT
data=$(psql -XAtc 'SHOW data_directory')
cat >"$brw/pgbackrest.conf" <<CONF
[global]
repo1-type=s3
repo1-path=/bench-pgbackrest
repo1-s3-bucket=$WARDEN_S3_BUCKET
repo1-s3-endpoint=localhost
repo1-s3-region=$AWS_REGION
repo1-s3-uri-style=path
repo1-storage-port=$port
repo1-storage-ca-file=$AWS_CA_BUNDLE
log-path=$brw/log
lock-path=$brw/lock
compress-type=gz
compress-level=6
process-max=2
start-fast=y
log-level-console=warn

[bench]
pg1-path=$data
pg1-socket-path=$PGHOST
pg1-port=$PGPORT
pg1-user=postgres
CONF
mkdir -p "$brw/log" "$brw/lock"
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$brw"
pgbr() { as_pg env PGBACKREST_REPO1_S3_KEY="$PGBACKREST_REPO1_S3_KEY" \
  PGBACKREST_REPO1_S3_KEY_SECRET="$PGBACKREST_REPO1_S3_KEY_SECRET" \
  pgbackrest --config="$brw/pgbackrest.conf" --stanza=bench "$@"; }

echo "pgbench -i -s $SCALE"
t=$(now); pgbench -i -q -s "$SCALE" >/dev/null 2>&1; echo "  initialised in $(since "$t") s"
psql -XAtc "SELECT 'database size: ' || pg_size_pretty(pg_database_size(current_database()))"
pgbr stanza-create >/dev/null

ckpt() {
  psql -XAtqc CHECKPOINT
  local seg
  seg=$(psql -XAtc "SELECT pg_walfile_name(pg_switch_wal())")
  until [ "$(psql -XAtc "SELECT coalesce(last_archived_wal >= '$seg', false) FROM pg_stat_archiver")" = t ]; do
    sleep 0.5
  done
}
out="$BENCH_WORK/out"
mkdir -p "$out"
[ "$(id -u)" -eq 0 ] && chown postgres: "$out"
w6s=() w1s=() brs=()
for round in $(seq 1 "${ROUNDS:-1}"); do
  if [ $((round % 2)) = 1 ]; then order=(w6 br w1); else order=(br w1 w6); fi
  for tool in "${order[@]}"; do
    ckpt; t=$(now)
    case $tool in
      w6) "$WARDEN" backup create --dir "$url" --level 6 -j 2 --quiet >"$out/id6"; w6s+=("$(since "$t")") ;;
      w1) "$WARDEN" backup create --dir "$url" --level 1 -j 2 --quiet >"$out/id1"; w1s+=("$(since "$t")") ;;
      br) pgbr backup --type=full >/dev/null; brs+=("$(since "$t")") ;;
    esac
  done
  echo "  round $round: warden gzip-6 ${w6s[-1]} s, pgBackRest gz-6 ${brs[-1]} s, warden gzip-1 ${w1s[-1]} s"
done
w6=$(median "${w6s[@]}") w1=$(median "${w1s[@]}") br=$(median "${brs[@]}")
ratio_line s3_backup_gzip6_vs_pgbackrest "$w6" "$br" s "target <= 1.0"
ratio_line s3_backup_gzip1_vs_pgbackrest "$w1" "$br" s "target <= 1.0"

restore_warden() { TMPDIR="$out" "$WARDEN" restore --dir "$url" "$(cat "$out/id6")" --target "$out/r_warden" --quiet; }
restore_pgbr() {
  mkdir -p "$out/r_pgbr"; [ "$(id -u)" -eq 0 ] && chown postgres: "$out/r_pgbr"
  pgbr restore --pg1-path="$out/r_pgbr" >/dev/null
}
rws=() rbs=()
order=(warden pgbr)
for round in $(seq 1 "${RESTORE_ROUNDS:-2}"); do
  rm -rf "$out/r_warden" "$out/r_pgbr"; sync
  for tool in "${order[@]}"; do
    t=$(now); "restore_$tool"; d=$(since "$t"); sync
    case $tool in warden) rws+=("$d") ;; pgbr) rbs+=("$d") ;; esac
  done
  echo "  restore round $round (${order[*]}): warden ${rws[-1]} s, pgBackRest ${rbs[-1]} s"
  order=("${order[@]:1}" "${order[0]}")
done
ratio_line s3_restore_vs_pgbackrest "$(median "${rws[@]}")" "$(median "${rbs[@]}")" s "target <= 1.0"
