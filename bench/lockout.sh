#!/usr/bin/env bash
# Record-failed-login throughput: warden.login_failed (C++, plans prepared once per
# backend) against a straightforward PL/pgSQL UPSERT of the same rule, with 8 pgbench
# clients, over 10,000 principals and over one hot principal, in one run.
#   default policy:  threshold 5, so principals get locked as the run goes on
#   counting:        threshold out of reach, every call counts; afterwards the counters
#                    must add up to exactly the number of calls (no lost count)
#   rolled back:     every failure recorded inside a transaction that then rolls back
#                    (the application's request failed): all must be counted and have
#                    their event once the writer caught up (target 100%)
#   connections:     connection rate with warden.role_lockout on against off (pgbench -C
#                    -S, 4 clients, scram-sha-256 password logins over loopback TCP)
# Prints one ratio line per comparison (calls/s, median of ROUNDS runs of SECONDS each).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-2}
CLIENTS=8

bench_cluster "max_connections = 50"
work=$BENCH_WORK
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION pg_warden;
CREATE SCHEMA bench;
-- The peer: the same rule (threshold, window, lock, doubling backoff, events) written the
-- straightforward way, one UPSERT that always counts, in PL/pgSQL.
CREATE TABLE bench.attempts (principal text PRIMARY KEY, failures int NOT NULL,
                             window_start timestamptz, lockouts int NOT NULL DEFAULT 0,
                             locked_until timestamptz);
CREATE TABLE bench.events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                           occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                           event_type text NOT NULL, principal text, source inet,
                           failures int, locked_until timestamptz, detail text);
CREATE INDEX ON bench.events (occurred_at);
CREATE INDEX ON bench.events (principal, occurred_at);
CREATE FUNCTION bench.login_failed(principal text, source inet DEFAULT NULL,
    OUT locked boolean, OUT locked_until timestamptz, OUT failures int,
    OUT retry_after_seconds int)
LANGUAGE plpgsql AS $$
DECLARE
    p warden.lockout_policy;
    was_locked boolean;
BEGIN
    SELECT * INTO p FROM warden.lockout_policy;
    INSERT INTO bench.attempts AS a (principal, failures, window_start, lockouts, locked_until)
    VALUES (login_failed.principal, 1, now(), 0, NULL)
    ON CONFLICT ON CONSTRAINT attempts_pkey DO UPDATE SET
        failures = CASE WHEN a.locked_until > now() THEN a.failures + 1
                        WHEN a.window_start <= now() - p.observation_window
                             OR a.locked_until IS NOT NULL THEN 1
                        ELSE a.failures + 1 END,
        window_start = CASE WHEN a.locked_until > now() THEN a.window_start
                            WHEN a.window_start <= now() - p.observation_window
                                 OR a.locked_until IS NOT NULL THEN now()
                            ELSE a.window_start END
    RETURNING a.failures, a.locked_until > now() INTO failures, was_locked;
    IF NOT coalesce(was_locked, false) AND failures >= p.threshold THEN
        UPDATE bench.attempts a
           SET lockouts = a.lockouts + 1,
               locked_until = now() + LEAST(p.max_lock_duration,
                                            p.lock_duration * power(2.0::float8, LEAST(a.lockouts, 20)))
         WHERE a.principal = login_failed.principal
        RETURNING a.locked_until INTO locked_until;
        INSERT INTO bench.events (event_type, principal, failures, locked_until)
        VALUES ('locked', principal, failures, locked_until);
    ELSIF was_locked THEN
        SELECT a.locked_until INTO locked_until FROM bench.attempts a
         WHERE a.principal = login_failed.principal;
    END IF;
    INSERT INTO bench.events (event_type, principal, source, failures, locked_until)
    VALUES ('login_failed', principal, source, failures, locked_until);
    locked := locked_until > now();
    retry_after_seconds := CASE WHEN locked THEN ceil(extract(epoch FROM locked_until - now())) ELSE 0 END;
END $$;
SQL

cat >"$work/warden_many.sql" <<'EOF'
\set p random(1, 10000)
SELECT * FROM warden.login_failed('user' || :p);
EOF
cat >"$work/peer_many.sql" <<'EOF'
\set p random(1, 10000)
SELECT * FROM bench.login_failed('user' || :p);
EOF
echo "SELECT * FROM warden.login_failed('hot@example.com');" >"$work/warden_hot.sql"
echo "SELECT * FROM bench.login_failed('hot@example.com');" >"$work/peer_hot.sql"

reset_state() {
  psql -X -q -o /dev/null -c "SELECT warden.lockout_flush()" -c "TRUNCATE warden.login_attempts, warden.security_events, bench.attempts, bench.events" \
       -c "VACUUM ANALYZE warden.login_attempts, warden.security_events, bench.attempts, bench.events" \
       -c "CHECKPOINT"
}

# run SCRIPT: prints "tps transactions"
run() {
  local out
  out=$(pgbench -n -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_PER_RUN" -f "$work/$1.sql" 2>&1)
  local tps tx
  tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
  tx=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
  echo "$tps $tx"
}

compare() {
  local name=$1 note=$2
  local ours=() peers=() lost=0
  for _ in $(seq "$ROUNDS"); do
    for side in warden peer; do
      reset_state
      read -r tps tx < <(run "${side}_$name")
      if [ "$side" = warden ]; then
        ours+=("$tps")
        psql -X -q -c "SELECT warden.lockout_flush()" >/dev/null
        events=$(psql -X -At -c "SELECT count(*) FROM warden.security_events WHERE event_type = 'login_failed'")
        counted=$(psql -X -At -c "SELECT coalesce(sum(failures), 0) FROM warden.login_attempts")
      else
        peers+=("$tps")
        events=$(psql -X -At -c "SELECT count(*) FROM bench.events WHERE event_type = 'login_failed'")
        counted=$(psql -X -At -c "SELECT coalesce(sum(failures), 0) FROM bench.attempts")
      fi
      [ "$events" -eq "$tx" ] || { echo "  $side $name: $tx calls but $events events"; lost=1; }
      if [ "$note" = counting ] && [ "$counted" -ne "$tx" ]; then
        echo "  $side $name: $tx calls but counters add up to $counted"; lost=1
      fi
      echo "  $side $name: $tps calls/s ($tx calls, $events events, counters $counted)"
    done
  done
  local verdict="no lost count"
  [ "$lost" -eq 0 ] || verdict="COUNT MISMATCH"
  ratio_line "login_failed_${name}_${note}_vs_plpgsql" "$(median "${ours[@]}")" "$(median "${peers[@]}")" \
    calls/s "target >= 1.0, $verdict"
}

echo "lockout: $CLIENTS clients, ${SECONDS_PER_RUN}s per run, $ROUNDS rounds, median calls/s"
compare many default
compare hot default
psql -X -q -c "UPDATE warden.lockout_policy SET threshold = 1000000000"
compare many counting
compare hot counting

# Failures inside transactions that roll back: the counters and events must still hold
# every one of them.
cat >"$work/warden_rollback.sql" <<'EOF'
\set p random(1, 10000)
BEGIN;
SELECT * FROM warden.login_failed('user' || :p);
ROLLBACK;
EOF
reset_state
read -r tps tx < <(run warden_rollback)
psql -X -q -c "SELECT warden.lockout_flush()" >/dev/null
counted=$(psql -X -At -c "SELECT coalesce(sum(failures), 0) FROM warden.login_attempts")
events=$(psql -X -At -c "SELECT count(*) FROM warden.security_events WHERE event_type = 'login_failed'")
echo "  warden rollback: $tps calls/s ($tx calls in rolled-back transactions, counters $counted, events $events)"
ratio_line rolled_back_failures_counted "$counted" "$tx" failures "target 1.0 (100%)"
ratio_line rolled_back_failure_events "$events" "$tx" events "target 1.0 (100%)"

# Connection rate with role lockout on against off: new connections (pgbench -C -S, 4
# clients), each a scram-sha-256 password login over loopback TCP. warden.role_lockout
# takes effect at server start, so the server restarts between the two sides.
data="$work/cluster/data"
as_server_user=()
[ "$(id -u)" -eq 0 ] && as_server_user=(runuser -u postgres --)
pgbench -i -s 1 -q >/dev/null 2>&1
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
SET password_encryption = 'scram-sha-256';
CREATE ROLE bench_login LOGIN PASSWORD 'bench-pass';
GRANT SELECT ON pgbench_accounts, pgbench_branches TO bench_login;
SQL
{ echo "host all all 127.0.0.1/32 scram-sha-256"; cat "$data/pg_hba.conf"; } >"$work/pg_hba.conf"
cp "$work/pg_hba.conf" "$data/pg_hba.conf"
restart_with_role_lockout() {
  "${as_server_user[@]}" pg_ctl -D "$data" -w -m fast -l "$work/cluster/server.log" restart \
    -o "-p $PGPORT -k $PGHOST -c listen_addresses=127.0.0.1 -c warden.role_lockout=$1" >/dev/null
}
connection_rate() {
  local out
  out=$(PGPASSWORD=bench-pass pgbench -n -C -S -c 4 -j 4 -T "$SECONDS_PER_RUN" -h 127.0.0.1 \
        -p "$PGPORT" -U bench_login postgres 2>&1) || { echo "$out" >&2; return 1; }
  echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
on=() off=()
for _ in $(seq "$ROUNDS"); do
  for side in off on; do
    restart_with_role_lockout "$side"
    tps=$(connection_rate)
    echo "  role lockout $side: $tps connections/s"
    if [ "$side" = on ]; then on+=("$tps"); else off+=("$tps"); fi
  done
done
failed_over=$(psql -X -At -c "SELECT count(*) FROM warden.role_lockouts")
ratio_line role_lockout_connection_rate_on_vs_off "$(median "${on[@]}")" "$(median "${off[@]}")" \
  connections/s "target >= 0.97 ($failed_over role counters)"
