#!/usr/bin/env bash
# Cost of running a job through pg_warden's job model (advisory lock, a committed
# 'running' row, the outcome, retry bookkeeping) against what pg_cron runs: a bare CALL of
# the same procedure. Both driven by pgbench from one client, fsync on, median of 3 rounds.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_cluster "warden.maintenance_enabled = off"

psql -X -q -c "CREATE EXTENSION pg_warden" \
  -c "CREATE TABLE bench_rows (id bigserial, at timestamptz DEFAULT now())" \
  -c "CREATE PROCEDURE public.bench_job() LANGUAGE plpgsql AS \$\$
      BEGIN INSERT INTO bench_rows DEFAULT VALUES; END \$\$" \
  -c "SELECT warden.schedule_job('bench_job', 'public.bench_job', '1 hour')" >/dev/null
echo "CALL warden.run_job('bench_job');" >"$BENCH_WORK/warden.sql"
echo "CALL public.bench_job();" >"$BENCH_WORK/plain.sql"

latency_ms() {
  pgbench -n -c 1 -T 5 -f "$1" 2>/dev/null | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p'
}
ours=() peer=()
for _ in 1 2 3; do
  ours+=("$(latency_ms "$BENCH_WORK/warden.sql")")
  peer+=("$(latency_ms "$BENCH_WORK/plain.sql")")
done
runs=$(psql -X -At -c "SELECT count(*) FROM warden.job_runs WHERE job = 'bench_job'")
echo "runs recorded: $runs; ours ms: ${ours[*]}; bare CALL ms: ${peer[*]}"
ratio_line worker_run_job_vs_bare_call "$(median "${ours[@]}")" "$(median "${peer[@]}")" ms \
  "(per job run, incl. 2 extra commits for the run record)"
