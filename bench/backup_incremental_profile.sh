#!/usr/bin/env bash
# Where an incremental backup's time goes (docs/backup.md, "Incremental and differential
# backups", profile): on a pgbench database (SCALE, default 20) a full warden backup, an
# UPDATE of 100000 accounts rows, then the floor set by the server alone (pg_basebackup
# streaming the same BASE_BACKUP to /dev/null) beside warden's incremental (CPU and wall
# time), and a second incremental with nothing changed. Run as root, under
# flock /tmp/bench.lock like every benchmark.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_cluster "wal_level = replica" "max_wal_senders = 4"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }
pgbench -i -q -s ${SCALE:-20} >/dev/null 2>&1
out=$BENCH_WORK/out; mkdir -p "$out"; [ "$(id -u)" -eq 0 ] && chown postgres: "$out"
psql -XAtqc CHECKPOINT
t=$(now); $WARDEN backup create --dir $out/w --quiet >/dev/null; echo "full $(since $t)"
psql -Xq -c "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= 100000"
psql -XAtqc CHECKPOINT
t=$(now); psql -XAtqc CHECKPOINT; echo "checkpoint (nothing dirty) $(since $t)"
t=$(now); pg_basebackup -D - -Ft -X none -c fast --manifest-checksums=SHA256 >/dev/null 2>&1 || true; echo "pg_basebackup to /dev/null (stdout tar) $(since $t)"
t=$(now); pg_basebackup -D $out/pgbb -Ft -X fetch -c fast --manifest-checksums=NONE; echo "pg_basebackup -Ft uncompressed no checksums $(since $t)"
psql -XAtqc CHECKPOINT
t=$(now); /usr/bin/time -f "  user %U s sys %S s wall %e s" $WARDEN backup create --dir $out/w --incremental --quiet >/dev/null; echo "incremental $(since $t)"
psql -XAtqc CHECKPOINT
t=$(now); /usr/bin/time -v $WARDEN backup create --dir $out/w --incremental --quiet 2>&1 >/dev/null | egrep 'Elapsed|User time|System time|Percent'; echo "incremental2 $(since $t)"
du -sh $out/w/*
