# Step: the migration ledger, driven by `warden migrate` on the auth-service sample set.
dir="$(cd "$(dirname "$0")/../.." && pwd)/migrations/auth-service"

bold "warden migrate status: nine migrations in $dir, none applied"
"$WARDEN" migrate status --dir "$dir"

bold "warden migrate up --dry-run: everything runs, then rolls back"
"$WARDEN" migrate up --dir "$dir" --dry-run | tail -n 3

bold "warden migrate up: each migration commits with its ledger row"
"$WARDEN" migrate up --dir "$dir"
psql -X -q -c "SELECT version, name, state, applied_by, round(execution_ms::numeric, 1) AS ms
               FROM warden.migration_status"

bold "Applying again from plain psql: the same checksum is skipped, a changed one refused"
psql -X -q -c "SELECT warden.apply_migration('001', 'create_users', pg_read_file('$dir/001_create_users.up.sql'))" 2>&1 || true
psql -X -q -c "SELECT warden.apply_migration('001', 'create_users', 'CREATE TABLE users (id int);')" 2>&1 || true

bold "warden migrate verify, after someone edits an applied file"
copy=$(mktemp -d); cp "$dir"/*.sql "$copy"/
printf -- '-- an innocent comment\n' >>"$copy/003_create_audit_logs.up.sql"
"$WARDEN" migrate verify --dir "$copy" || echo "(exit $?)"
rm -rf "$copy"

bold "DDL outside a migration is drift"
psql -X -q -c "ALTER TABLE users ADD COLUMN nickname text"
"$WARDEN" migrate status --dir "$dir" | tail -n 2

bold "warden migrate down: the latest migration's stored down script"
"$WARDEN" migrate down
psql -X -q -c "SELECT event, version, name FROM warden.migration_events WHERE event <> 'drift' ORDER BY id DESC LIMIT 3"
"$WARDEN" migrate up --dir "$dir" --quiet
