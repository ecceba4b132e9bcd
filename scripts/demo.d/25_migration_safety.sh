# Step: migration safety, measured on the real schema (warden migrate plan, the policy,
# the lock queue a migration never blocks).
dir=$(mktemp -d /tmp/warden_demo_plan.XXXXXX)
trap 'rm -rf "$dir"' EXIT
psql -X -q -c "CREATE TABLE orders (id bigint PRIMARY KEY, total int, note text)" \
     -c "INSERT INTO orders SELECT g, g % 100, 'n' FROM generate_series(1, 200000) g" -c "ANALYZE orders"
cat >"$dir/100_orders_total_bigint.up.sql" <<'SQL'
-- widen the total: the server rewrites the table under ACCESS EXCLUSIVE
ALTER TABLE orders ALTER COLUMN total TYPE bigint;
CREATE INDEX orders_total ON orders (total);
SQL
printf 'DROP INDEX orders_total;\nALTER TABLE orders ALTER COLUMN total TYPE int;\n' >"$dir/100_orders_total_bigint.down.sql"

bold "warden migrate plan: the migration runs in a transaction that is rolled back"
"$WARDEN" migrate plan --dir "$dir" || echo "(exit $?)"

bold "The policy refuses a rewrite above 1 MB (warden.migration_policy), so up applies nothing"
psql -X -q -c "UPDATE warden.migration_policy SET threshold = 1000000 WHERE rule = 'rewrite_bytes'"
"$WARDEN" migrate up --dir "$dir" 2>&1 || echo "(exit $?)"

bold "A directive in the file lifts it for this migration, and the ledger records it"
sed -i '1i -- warden:allow rewrite' "$dir/100_orders_total_bigint.up.sql"
"$WARDEN" migrate up --dir "$dir" 2>&1 | grep -v '^$' || true
psql -X -q -c "SELECT version, detail->'allow' AS allowed, detail->'access_exclusive_ms' IS NOT NULL AS measured
               FROM warden.migration_events WHERE event = 'applied' AND version = '100'"

bold "The lock queue: with a transaction holding the table, each statement gives up its place and retries"
psql -X -q -c "SET warden.migration_statement_lock_timeout = '100ms'" -c "SET warden.migration_lock_retries = 2" \
     -c "BEGIN" -c "SELECT count(*) FROM orders" -c "\! psql -X -q -c \"SET warden.migration_statement_lock_timeout = '100ms'\" -c \"SET warden.migration_lock_retries = 2\" -c \"SELECT warden.apply_migration('101', 'orders_note', 'ALTER TABLE orders DROP COLUMN note')\" 2>&1 | sed -n '1,4p'" \
     -c "COMMIT"
"$WARDEN" migrate down --quiet
psql -X -q -c "UPDATE warden.migration_policy SET threshold = 100000000 WHERE rule = 'rewrite_bytes'" -c "DROP TABLE orders"
