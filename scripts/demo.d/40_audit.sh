# Step: the audit trail.
bold "Audit trail: enable it on a table, secrets excluded"
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE TABLE demo_accounts (id bigint PRIMARY KEY, email text, password_hash text, plan text);
SELECT warden.enable_audit('demo_accounts', exclude_columns => '{password_hash}');
SQL

bold "An application request sets its actor; the C++ trigger records changed columns only"
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
BEGIN;
SELECT warden.set_actor('user:42') \g /dev/null
INSERT INTO demo_accounts VALUES (1, 'ann@example.com', 'argon2id$...', 'free');
UPDATE demo_accounts SET plan = 'pro' WHERE id = 1;
UPDATE demo_accounts SET password_hash = 'argon2id$new' WHERE id = 1;
UPDATE demo_accounts SET plan = 'pro' WHERE id = 1;   -- changes nothing: not logged
COMMIT;
SELECT op, record_key, old_values, new_values, excluded_changed, actor
FROM warden.audit_history('demo_accounts', '{"id": 1}');
SQL

bold "The log is append-only, even for a superuser"
psql -X -q -c "DELETE FROM warden.audit_log" 2>&1 || true

bold "Daily partitions made ahead; retention drops whole partitions"
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
SELECT partition, range_start, range_end FROM warden.audit_partitions ORDER BY range_start NULLS FIRST LIMIT 4;
SELECT warden.cleanup_audit() AS rows_removed;
SELECT * FROM warden.audit_daily_counts WHERE table_name = 'demo_accounts';
DROP TABLE demo_accounts;
SQL
