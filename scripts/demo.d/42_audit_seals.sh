# Step: seals over the audit trail.
bold "Seals: the worker hashes each closed slice of the trail and chains it to the last"
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE TABLE demo_ledger (id bigint PRIMARY KEY, amount int);
SELECT warden.enable_audit('demo_ledger') \g /dev/null
-- One-second slices so that the demo need not wait a minute.
UPDATE warden.audit_settings SET seal_interval = '1 second';
INSERT INTO demo_ledger SELECT g, 100 * g FROM generate_series(1, 5) g;
-- Wait (for a condition) until the slice of those rows has closed, then seal, as the job does.
DO $$ BEGIN
    WHILE clock_timestamp() < date_trunc('second', (SELECT max(logged_at) FROM warden.audit_log)) + interval '1.1 second' LOOP
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT warden.seal_audit() > 0 AS sealed;
SQL
"$WARDEN" audit verify
"$WARDEN" audit head

bold "A superuser edits a sealed row: verify names the slice"
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
BEGIN;
SELECT warden._audit_retention_mode(true) \g /dev/null
UPDATE warden.audit_log SET new_values = '{"id": 3, "amount": 1}' WHERE table_name = 'demo_ledger' AND record_key = '{"id": 3}';
COMMIT;
SQL
"$WARDEN" audit verify || echo "(exit $?)"
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
DROP TABLE demo_ledger;
UPDATE warden.audit_settings SET seal_interval = '1 minute';
SQL
