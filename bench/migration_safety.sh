#!/usr/bin/env bash
# bench/migration_safety.sh, in one run:
# (a) a corpus of labelled migrations (risky and safe) against tables with data: pg_warden's
#     plan (`warden migrate plan`, which runs each one and rolls it back) against squawk
#     (squawk-cli, a linter that reads the SQL only) on the same files; true and false
#     positives per tool. Target: every risky case found, no safe one flagged, more found
#     than squawk.
# (b) the application's p99 latency (pgbench -S, 4 clients, at a fixed rate so that a
#     stalled query counts for every request scheduled behind it) while a migration's
#     ALTER TABLE waits behind a 10-second transaction: without the statement lock timeout
#     (the ALTER waits in the lock queue and every query queues behind it) and with it
#     (the ALTER gives up its place after MIGRATION_LOCK_TIMEOUT and retries), against the
#     undisturbed run. Target: p99 with it at most 2x the undisturbed one.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ROWS=${ROWS:-400000}
RATE=${RATE:-500}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-60}
MIGRATION_LOCK_TIMEOUT=${MIGRATION_LOCK_TIMEOUT:-20ms}
squawk="$bench_root/build/bench-node/node_modules/.bin/squawk"
[ -x "$squawk" ] || { echo "bench/migration_safety: squawk missing; run scripts/install-deps.sh --bench" >&2; exit 1; }
command -v pgbench >/dev/null || { echo "bench/migration_safety: pgbench missing" >&2; exit 1; }

bench_cluster
work="$BENCH_WORK/corpus"
mkdir -p "$work"

# ---- (a) the corpus ----
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL
CREATE DATABASE corpus;
\c corpus
CREATE EXTENSION pg_warden;
CREATE TABLE owners (id int PRIMARY KEY, name text);
INSERT INTO owners SELECT g, 'owner ' || g FROM generate_series(1, 1000) g;
CREATE TABLE accounts (id bigint PRIMARY KEY, owner int, email text, status varchar(20),
                       code varchar(20), amount int, legacy text,
                       created_at timestamptz DEFAULT now());
INSERT INTO accounts SELECT g, g % 1000 + 1, 'u' || g || '@example.com', 'active', 'c' || g,
                            g % 500, NULL, now()
FROM generate_series(1, $ROWS) g;
ALTER TABLE accounts ADD CONSTRAINT accounts_amount_nonneg CHECK (amount >= 0) NOT VALID;
ALTER TABLE accounts ADD CONSTRAINT accounts_status_nn CHECK (status IS NOT NULL);
CREATE TABLE events (id bigint, kind int, body text);
CREATE VIEW active_accounts AS SELECT id, status FROM accounts WHERE status = 'active';
CREATE VIEW owner_names AS SELECT id, name FROM owners;
CREATE FUNCTION account_email(i bigint) RETURNS text LANGUAGE plpgsql
AS \$\$ BEGIN RETURN (SELECT email FROM accounts WHERE id = i); END \$\$;
-- Every plan is rolled back, and a rolled-back backfill leaves dead rows: an autovacuum
-- the next plan's ALTER TABLE had to wait for would count in that plan's hold time.
ALTER TABLE accounts SET (autovacuum_enabled = off);
ALTER TABLE owners SET (autovacuum_enabled = off);
VACUUM ANALYZE;
SQL

n=0
# case LABEL NAME SQL: one migration file of the corpus, labelled risky or safe.
case_() {
  n=$((n + 1))
  local id; id=$(printf '%02d' "$n")
  mkdir -p "$work/$id"
  printf '%s\n' "$3" >"$work/$id/${id}_$1_$2.sql"
}
case_ risky index_plain "CREATE INDEX accounts_owner_idx ON accounts (owner);"
case_ risky unique_index_plain "CREATE UNIQUE INDEX accounts_email_idx ON accounts (email);"
case_ risky check_validated "ALTER TABLE accounts ADD CONSTRAINT amount_small CHECK (amount < 1000);"
case_ risky fk_validated "ALTER TABLE accounts ADD CONSTRAINT accounts_owner_fk FOREIGN KEY (owner) REFERENCES owners (id);"
case_ risky fk_new_column "ALTER TABLE accounts ADD COLUMN referrer int REFERENCES owners (id);"
case_ risky unique_constraint "ALTER TABLE accounts ADD CONSTRAINT accounts_code_key UNIQUE (code);"
case_ risky set_not_null "ALTER TABLE accounts ALTER COLUMN email SET NOT NULL;"
case_ risky volatile_uuid_default "ALTER TABLE accounts ADD COLUMN token uuid DEFAULT gen_random_uuid();"
case_ risky volatile_expr_default "ALTER TABLE accounts ADD COLUMN sample boolean NOT NULL DEFAULT random() < 0.5;"
case_ risky serial_column "ALTER TABLE accounts ADD COLUMN seq bigserial;"
case_ risky int_to_bigint "ALTER TABLE accounts ALTER COLUMN amount TYPE bigint;"
case_ risky int_to_text "ALTER TABLE accounts ALTER COLUMN owner TYPE text;"
case_ risky text_to_varchar "ALTER TABLE accounts ALTER COLUMN email TYPE varchar(100);"
case_ risky drop_column_used "ALTER TABLE accounts DROP COLUMN email;"
case_ risky rename_column_used "ALTER TABLE accounts RENAME COLUMN status TO state;"
case_ risky drop_table_used "DROP TABLE owners CASCADE;"
case_ risky rename_table_used "ALTER TABLE accounts RENAME TO customer_accounts;"
case_ risky set_unlogged "ALTER TABLE accounts SET UNLOGGED;"
case_ risky validate_same_migration "ALTER TABLE accounts ADD CONSTRAINT amount_lt CHECK (amount < 1000) NOT VALID;
ALTER TABLE accounts VALIDATE CONSTRAINT amount_lt;"
case_ risky backfill_under_lock "ALTER TABLE accounts ADD COLUMN score int;
UPDATE accounts SET score = amount * 2;"
case_ risky backfill_default_under_lock "ALTER TABLE accounts ADD COLUMN region text DEFAULT 'eu';
UPDATE accounts SET region = 'us' WHERE id % 3 = 0;"
case_ safe index_concurrently "-- warden:no-transaction
CREATE INDEX CONCURRENTLY accounts_owner_idx ON accounts (owner);"
case_ safe unique_index_concurrently "-- warden:no-transaction
CREATE UNIQUE INDEX CONCURRENTLY accounts_code_idx ON accounts (code);"
case_ safe check_not_valid "ALTER TABLE accounts ADD CONSTRAINT amount_small CHECK (amount < 1000) NOT VALID;"
case_ safe validate_later "ALTER TABLE accounts VALIDATE CONSTRAINT accounts_amount_nonneg;"
case_ safe fk_not_valid "ALTER TABLE accounts ADD CONSTRAINT accounts_owner_fk FOREIGN KEY (owner) REFERENCES owners (id) NOT VALID;"
case_ safe add_nullable_column "ALTER TABLE accounts ADD COLUMN note text;"
case_ safe constant_default "ALTER TABLE accounts ADD COLUMN flags int NOT NULL DEFAULT 0;"
case_ safe stable_default "ALTER TABLE accounts ADD COLUMN touched_at timestamptz DEFAULT now();"
case_ safe varchar_to_text "ALTER TABLE accounts ALTER COLUMN code TYPE text;"
case_ safe widen_varchar "ALTER TABLE accounts ALTER COLUMN code TYPE varchar(50);"
case_ safe set_not_null_proven "ALTER TABLE accounts ALTER COLUMN status SET NOT NULL;"
case_ safe new_table "CREATE TABLE invoices (id bigint PRIMARY KEY, account bigint, total int);
CREATE INDEX invoices_account ON invoices (account);
ALTER TABLE invoices ADD CONSTRAINT invoices_total CHECK (total >= 0);"
case_ safe index_empty_table "CREATE INDEX events_kind ON events (kind);"
case_ safe retype_empty_table "ALTER TABLE events ALTER COLUMN kind TYPE bigint;"
case_ safe set_default "ALTER TABLE accounts ALTER COLUMN status SET DEFAULT 'new';"
case_ safe comment "COMMENT ON COLUMN accounts.legacy IS 'unused since 2024';"
case_ safe create_view "CREATE VIEW big_accounts AS SELECT id FROM accounts WHERE amount > 400;"

# squawk's rules about style rather than locks or rewrites are left out: types it prefers
# (bigint, text, timestamptz, identity), IF NOT EXISTS, and the lock_timeout /
# statement_timeout settings, which warden sets for each statement itself.
squawk_excluded=prefer-bigint-over-int,prefer-bigint-over-smallint,prefer-identity,prefer-text-field,prefer-timestamptz,prefer-robust-stmts,require-lock-timeout,require-statement-timeout

declare -A score=()
for key in warden_tp warden_fp warden_fn warden_tn squawk_tp squawk_fp squawk_fn squawk_tn; do score[$key]=0; done
printf '%-4s %-6s %-28s %-24s %s\n' case label name pg_warden squawk
for dir in "$work"/*/; do
  file=$(ls "$dir")
  id=${file%%_*}
  rest=${file#*_}
  label=${rest%%_*}
  name=${rest#*_}; name=${name%.sql}
  plan=$("$WARDEN" migrate plan -q --json -d dbname=corpus --dir "$dir" 2>/dev/null || true)
  # A rolled-back backfill leaves dead rows: each case starts from the same table.
  psql -X -q -d corpus -c 'VACUUM accounts, owners'

  ours=$(printf '%s' "$plan" | python3 -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    print("ERROR"); sys.exit()
codes = sorted({f["code"] for m in doc["migrations"] for s in m["statements"] for f in s["findings"]
                if f["action"] in ("warn", "refuse", "allowed")})
print(",".join(codes) or "-")')
  theirs=$("$squawk" --pg-version 15 --reporter gcc --exclude "$squawk_excluded" "$dir$file" 2>/dev/null |
           awk '/: warning: |: error: /{print $3}' | sort -u | paste -sd, - || true)
  theirs=${theirs:--}
  for tool in warden squawk; do
    found=$([ "$tool" = warden ] && echo "$ours" || echo "$theirs")
    if [ "$found" = ERROR ]; then echo "bench/migration_safety: the plan of $file failed" >&2; exit 1; fi
    if [ "$label" = risky ]; then
      [ "$found" != - ] && score[${tool}_tp]=$((score[${tool}_tp] + 1)) || score[${tool}_fn]=$((score[${tool}_fn] + 1))
    else
      [ "$found" != - ] && score[${tool}_fp]=$((score[${tool}_fp] + 1)) || score[${tool}_tn]=$((score[${tool}_tn] + 1))
    fi
  done
  printf '%-4s %-6s %-28s %-24s %s\n' "$id" "$label" "$name" "$ours" "$theirs"
done
risky=$((score[warden_tp] + score[warden_fn]))
safe=$((score[warden_fp] + score[warden_tn]))
echo "corpus: $n migrations, $risky risky, $safe safe; squawk $("$squawk" --version)"
for tool in warden squawk; do
  echo "$tool: true positives ${score[${tool}_tp]}/$risky, false negatives ${score[${tool}_fn]}, false positives ${score[${tool}_fp]}/$safe"
done
ratio_line migration_safety_risky_found_vs_squawk "${score[warden_tp]}" "${score[squawk_tp]}" cases \
  "target > 1, with every one of $risky found (${score[warden_tp]}) and no false positive (${score[warden_fp]})"
ratio_line migration_safety_false_positives_vs_squawk "${score[warden_fp]}" "${score[squawk_fp]}" cases \
  "target 0 for pg_warden"

# ---- (b) the application's p99 while a migration waits behind a long transaction ----
psql -X -q -d postgres -c 'CREATE DATABASE app'
pgbench -q -i -s 10 app >/dev/null 2>&1
psql -X -q -d app -c 'CREATE EXTENSION pg_warden' -c 'VACUUM ANALYZE'

# p99 of the latency each request saw (its time plus its lag behind the schedule), in ms.
p99() {
  cat "$1".* | awk '{print ($3 + $7) / 1000}' | sort -g |
    awk '{a[NR] = $1} END {i = int(NR * 0.99); if (i < 1) i = 1; printf "%.3f", a[i]}'
}

# run NAME [LOCK_TIMEOUT]: pgbench at a fixed rate; with a timeout, a 10-second transaction
# takes a lock on pgbench_accounts at 10 s and a migration adding a column starts at 11 s.
# Sets P99.
version=0
run() {
  local name=$1 timeout=${2:-}
  local prefix="$BENCH_WORK/log_$name"
  pgbench -n -S -c 4 -j 2 -R "$RATE" -T "$SECONDS_PER_RUN" -l --log-prefix="$prefix" app \
    >"$BENCH_WORK/pgbench_$name.out" 2>&1 &
  local bench=$!
  if [ -n "$timeout" ]; then
    sleep 10
    psql -X -q -d app -c "BEGIN; SELECT count(*) FROM pgbench_accounts WHERE aid = 1; SELECT pg_sleep(10); COMMIT;" >/dev/null &
    local blocker=$!
    sleep 1
    version=$((version + 1))
    local started; started=$(date +%s.%N)
    psql -X -q -d app -v ON_ERROR_STOP=1 \
      -c "SET client_min_messages = warning" \
      -c "SET warden.migration_statement_lock_timeout = '$timeout'" \
      -c "SET warden.migration_lock_retries = 100" \
      -c "SELECT warden.apply_migration('$version', 'add_note_$version', 'ALTER TABLE pgbench_accounts ADD COLUMN note_$version text')" >/dev/null
    local ended; ended=$(date +%s.%N)
    wait "$blocker"
    echo "$name: the migration took $(awk -v a="$started" -v b="$ended" 'BEGIN {printf "%.1f", b - a}') s, behind the 10 s transaction"
  fi
  wait "$bench"
  P99=$(p99 "$prefix")
  echo "$name: p99 $P99 ms ($(grep -E '^number of transactions actually processed' "$BENCH_WORK/pgbench_$name.out"))"
}
# The machine may be shared: RUNS pairs of undisturbed and lock-timeout runs, medians
# reported; the run without the lock timeout once.
RUNS=${RUNS:-3}
declare -a p_undisturbed p_with
for i in $(seq 1 "$RUNS"); do
  run "undisturbed_$i"
  p_undisturbed+=("$P99")
  run "lock_timeout_$i" "$MIGRATION_LOCK_TIMEOUT"
  p_with+=("$P99")
done
run no_lock_timeout 0
without=$P99
undisturbed=$(median "${p_undisturbed[@]}")
with=$(median "${p_with[@]}")
echo "pgbench -S, 4 clients, $RATE requests/s, $SECONDS_PER_RUN s per run: p99 undisturbed $undisturbed ms (median of ${p_undisturbed[*]}), with a $MIGRATION_LOCK_TIMEOUT statement lock timeout and retries $with ms (median of ${p_with[*]}), without it $without ms"
ratio_line migration_lock_retry_p99_vs_undisturbed "$with" "$undisturbed" ms "target <= 2"
ratio_line migration_no_lock_timeout_p99_vs_undisturbed "$without" "$undisturbed" ms "(what the retries avoid)"
