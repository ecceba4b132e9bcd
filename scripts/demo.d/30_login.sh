# Step: login hygiene. Failed logins lock an account, the decision says how long to wait,
# an administrator unlocks; a sessions table is registered for expiry and cleaned in batches.
bold "Five failed logins for alice@example.com: the fifth locks the account for 15 minutes"
{
  echo "CREATE TEMP TABLE attempts (attempt int, locked bool, locked_until timestamptz(0),
                                failures int, retry_after_seconds int);"
  for n in 1 2 3 4 5 6; do
    echo "INSERT INTO attempts SELECT $n, * FROM warden.login_failed('alice@example.com', '203.0.113.7');"
  done
  echo "SELECT * FROM attempts ORDER BY attempt;"
} | psql -X -q

bold "The right password does not help while locked (retry_after_seconds says how long to wait)"
psql -X -q -c "SELECT * FROM warden.login_succeeded('alice@example.com', '203.0.113.7')"

bold "Every failure and the lockout are security events (written outside the caller's transaction)"
psql -X -q -c "SELECT warden.lockout_flush()" >/dev/null
psql -X -q -c "SELECT event_type, principal, source, failures, detail
               FROM warden.security_events ORDER BY id"

bold "An administrator unlocks; the next login succeeds and clears the counter"
psql -X -q -c "SELECT warden.unlock('alice@example.com') AS was_locked" \
           -c "SELECT * FROM warden.login_succeeded('alice@example.com', '203.0.113.7')"

bold "Session expiry: register a sessions table (half of 10,000 sessions have expired)"
psql -X -q <<'SQL'
CREATE TABLE demo_sessions (id bigint PRIMARY KEY, user_id int, expires_at timestamptz NOT NULL,
                            status text NOT NULL DEFAULT 'active');
CREATE INDEX ON demo_sessions (expires_at);
INSERT INTO demo_sessions (id, user_id, expires_at)
SELECT g, g % 100, now() + CASE WHEN g % 2 = 0 THEN -1 ELSE 1 END * interval '1 hour'
FROM generate_series(1, 10000) g;
SELECT tbl, expires_column, mode, batch_size, key_columns
FROM warden.register_expiry('demo_sessions', 'expires_at', batch_size => 1000);
SELECT warden.session_valid('demo_sessions', 2::bigint) AS session_2_valid,
       warden.session_valid('demo_sessions', 3::bigint) AS session_3_valid;
SQL

bold "CALL warden.expire_rows(): batches of 1,000 rows, each committed on its own"
psql -X -q -c "CALL warden.expire_rows()" \
           -c "SELECT tbl, last_status, last_rows_expired, last_batches, backlog_rows FROM warden.expiry_status" \
           -c "SELECT count(*) AS sessions_left FROM demo_sessions"
psql -X -q -c "SELECT warden.unregister_expiry('demo_sessions')" -c "DROP TABLE demo_sessions" >/dev/null
