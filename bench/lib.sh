# Shared by the benchmark scripts: source it, then call bench_cluster to get a throwaway
# cluster (fsync on, as in production) and report with ratio_line.
bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WARDEN="$bench_root/build/utility/warden"

# Starts a throwaway cluster for this benchmark and exports PG* for it. Extra settings
# may follow as arguments ("name = value" lines). Stopped and removed on exit.
bench_cluster() {
  BENCH_WORK=$(mktemp -d /tmp/pg_warden_bench.XXXXXX)
  trap '"$bench_root/tests/harness/stop-clusters.sh" "$BENCH_WORK"; rm -rf "$BENCH_WORK"' EXIT
  trap 'exit 130' INT TERM
  chmod 755 "$BENCH_WORK"
  local conf="$BENCH_WORK/extra.conf"
  { echo "fsync = on"; echo "shared_buffers = 512MB"; echo "max_wal_size = 4GB";
    for line in "$@"; do echo "$line"; done; } >"$conf"
  eval "$(WARDEN_EXTRA_CONF="$conf" "$bench_root/tests/harness/cluster.sh" start "$BENCH_WORK/cluster")"
}

# median N1 N2 ...: the median of numbers (the machine is noisy: quote medians).
median() {
  printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

# ratio_line NAME WARDEN PEER UNIT [NOTE]: the one line a comparison prints, e.g.
#   ratio migrate_up_vs_psql: 1.08 (pg_warden 6.70 s, peer 6.20 s) target <= 1.2
ratio_line() {
  local name=$1 ours=$2 peer=$3 unit=$4 note=${5:-}
  awk -v n="$name" -v a="$ours" -v b="$peer" -v u="$unit" -v t="$note" \
    'BEGIN {printf "ratio %s: %.3f (pg_warden %s %s, peer %s %s)%s\n", n, (b == 0 ? 0 : a / b), a, u, b, u, (t == "" ? "" : " " t)}'
}
