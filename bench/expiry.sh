#!/usr/bin/env bash
# Session expiry under application load: ROWS sessions, half of them expired and
# interleaved with live ones on the same pages. pgbench (4 clients, rate-limited to RATE
# transactions/s) keeps updating live sessions while, in turn:
#   none     nothing else runs                         (the application's own p99)
#   delete   one plain DELETE ... WHERE expires_at < now()
#   naive    10,000-row DELETE batches, each committed (a DO loop, no SKIP LOCKED)
#   warden   CALL warden.expire_rows() (batches of BATCH rows, FOR UPDATE SKIP LOCKED)
# Reports expired rows/s and the application's p99 latency during the expiry (lag
# included), one ratio line per comparison. The table is rebuilt before each expiry.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
ROWS=${ROWS:-2000000}
RATE=${RATE:-400}
BATCH=${BATCH:-10000}
APP_SECONDS=${APP_SECONDS:-60}
LEAD=3

bench_cluster "max_connections = 30" "autovacuum_naptime = 10s"
work=$BENCH_WORK
half=$((ROWS / 2))

psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION pg_warden" -c "
CREATE TABLE template AS
SELECT g AS id, g % 100000 AS user_id, md5(g::text) AS token_hash,
       now() - interval '2 days' AS created_at,
       CASE WHEN g % 2 = 0 THEN now() - (g % 86400) * interval '1 second'
            ELSE now() + interval '1 day' + (g % 3600) * interval '1 second' END AS expires_at,
       NULL::timestamptz AS last_seen_at, 'active'::text AS status
FROM generate_series(1, $ROWS) g"

rebuild() {
  psql -X -q -v ON_ERROR_STOP=1 \
    -c "DROP TABLE IF EXISTS sessions" \
    -c "CREATE TABLE sessions (LIKE template)" \
    -c "INSERT INTO sessions SELECT * FROM template" \
    -c "ALTER TABLE sessions ADD PRIMARY KEY (id)" \
    -c "CREATE INDEX ON sessions (expires_at)" \
    -c "VACUUM ANALYZE sessions" -c "CHECKPOINT"
}

cat >"$work/app.sql" <<EOF
\\set k random(0, $((half - 1)))
UPDATE sessions SET last_seen_at = now() WHERE id = 2 * :k + 1;
EOF

# scenario NAME CMD: pgbench in the background, CMD after LEAD seconds. Prints
# "rows seconds p99_ms" (rows and seconds of CMD; p99 of transactions ending while it ran).
scenario() {
  local name=$1 cmd=$2
  rm -f "$work/pgb_$name".*
  (cd "$work" && pgbench -n -c 4 -j 1 -R "$RATE" -T "$APP_SECONDS" --log --log-prefix="pgb_$name" \
     -f app.sql >"$work/pgbench_$name.out" 2>&1) &
  local app=$!
  sleep "$LEAD"
  local before start end after
  before=$(psql -X -At -c "SELECT count(*) FROM sessions")
  start=$(date +%s.%N)
  [ -n "$cmd" ] && psql -X -q -c "$cmd" >/dev/null
  end=$(date +%s.%N)
  [ -n "$cmd" ] || end=$(awk -v s="$start" -v d="$APP_SECONDS" -v l="$LEAD" 'BEGIN {printf "%.3f\n", s + d - 2 * l}')
  after=$(psql -X -At -c "SELECT count(*) FROM sessions")
  wait "$app"
  local p99
  p99=$(cat "$work/pgb_$name".* | awk -v s="$start" -v e="$end" '
    { t = $5 + $6 / 1e6; if (t >= s && t <= e) print ($3 + (NF >= 7 ? $7 : 0)) / 1000 }' |
    sort -g | awk '{a[NR] = $1} END {if (NR == 0) print 0; else print a[int(NR * 0.99 + 0.5) < 1 ? 1 : int(NR * 0.99 + 0.5)]}')
  awk -v r=$((before - after)) -v s="$start" -v e="$end" -v p="$p99" -v n="$name" \
    'BEGIN {printf "  %-7s %8d rows in %6.2f s = %9.0f rows/s, app p99 %.2f ms\n", n, r, e - s, (e > s ? r / (e - s) : 0), p > "/dev/stderr"; print r, e - s, p}'
}

echo "expiry: $ROWS sessions, $half expired; pgbench 4 clients at $RATE tx/s; warden batch $BATCH"
rebuild
read -r _ _ p99_none < <(scenario none "")
read -r rows_delete s_delete p99_delete < <(scenario delete "DELETE FROM sessions WHERE expires_at < now()")
rebuild
read -r rows_naive s_naive p99_naive < <(scenario naive "DO \$\$ DECLARE n int; BEGIN LOOP
  DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at < now() LIMIT 10000);
  GET DIAGNOSTICS n = ROW_COUNT; EXIT WHEN n = 0; COMMIT; END LOOP; END \$\$")
rebuild
psql -X -q -c "SELECT warden.register_expiry('sessions', 'expires_at', batch_size => $BATCH)" \
     -c "ALTER DATABASE postgres SET warden.expiry_time_budget = '10min'" >/dev/null
read -r rows_warden s_warden p99_warden < <(scenario warden "CALL warden.expire_rows()")
psql -X -c "SELECT rows_expired, batches, duration, backlog_rows, status FROM warden.expiry_runs"

rate() { awk -v r="$1" -v s="$2" 'BEGIN {printf "%.0f", (s > 0 ? r / s : 0)}'; }
ratio_line expiry_app_p99_vs_no_expiry "$p99_warden" "$p99_none" ms "target <= 2.0"
ratio_line plain_delete_app_p99_vs_no_expiry "$p99_delete" "$p99_none" ms "(reference)"
ratio_line naive_batches_app_p99_vs_no_expiry "$p99_naive" "$p99_none" ms "(reference)"
ratio_line expiry_app_p99_vs_plain_delete "$p99_warden" "$p99_delete" ms "lower is better"
ratio_line expiry_rows_per_s_vs_plain_delete "$(rate "$rows_warden" "$s_warden")" \
  "$(rate "$rows_delete" "$s_delete")" rows/s "target: pg_warden >= 50000 rows/s"
