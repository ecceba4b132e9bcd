-- Account locking: the decision of each call, lock at the threshold, backoff, permanent
-- locks, known sources, per-source throttling, administration, events, cleanup,
-- privileges and every bad input.
CREATE EXTENSION pg_warden;
-- retry_min rounds the wait up to minutes so that the output does not depend on timing.
-- The tables are written behind the decisions by the lockout writer: a test that reads
-- or changes them first waits for it (warden.lockout_flush()).
\set d 'locked, locked_until IS NOT NULL AS until_set, failures, ceil(retry_after_seconds / 60.0) AS retry_min'

SELECT threshold, observation_window, lock_duration, backoff, max_lock_duration,
       permanent_after, source_threshold, source_window, allowed_sources
FROM warden.lockout_policy;

-- Five failures: the fifth locks for 15 minutes; the sixth is refused and not counted.
SELECT :d FROM warden.login_failed('alice@example.com');
SELECT :d FROM warden.login_failed('alice@example.com');
SELECT :d FROM warden.login_failed('alice@example.com');
SELECT :d FROM warden.login_failed('alice@example.com');
SELECT :d, retry_after_seconds FROM warden.login_failed('alice@example.com');
SELECT :d FROM warden.login_failed('alice@example.com');
-- The right password does not help while locked.
SELECT :d FROM warden.login_succeeded('alice@example.com');
SELECT warden.is_locked('alice@example.com') AS alice_locked,
       warden.is_locked('bob@example.com') AS bob_locked;

-- An unknown principal gets the same kind of answer, and is tracked the same way.
SELECT :d FROM warden.login_failed('nobody-with-this-name');

-- Success before the threshold resets the counter.
SELECT :d FROM warden.login_failed('bob@example.com');
SELECT :d FROM warden.login_failed('bob@example.com');
SELECT :d FROM warden.login_succeeded('bob@example.com');
SELECT :d FROM warden.login_failed('bob@example.com');

-- A window that ended starts a new count.
SELECT warden.lockout_flush() \gset
UPDATE warden.login_attempts SET window_start = now() - interval '16 minutes'
 WHERE principal = 'bob@example.com';
SELECT :d FROM warden.login_failed('bob@example.com');

-- Backoff: each further lockout doubles the lock, capped at max_lock_duration.
UPDATE warden.lockout_policy SET threshold = 2, lock_duration = '10 hours';
SELECT :d FROM warden.login_failed('carol');
SELECT :d FROM warden.login_failed('carol');
-- (The lock is made to have ended: it began an hour after its window started.)
SELECT warden.lockout_flush() \gset
UPDATE warden.login_attempts SET window_start = now() - interval '11 hours',
                                 locked_until = now() - interval '1 second' WHERE principal = 'carol';
SELECT :d FROM warden.login_failed('carol');
SELECT :d FROM warden.login_failed('carol');
SELECT warden.lockout_flush() \gset
UPDATE warden.login_attempts SET window_start = now() - interval '21 hours',
                                 locked_until = now() - interval '1 second' WHERE principal = 'carol';
SELECT :d FROM warden.login_failed('carol');
SELECT :d FROM warden.login_failed('carol');
SELECT :d FROM warden.login_failed('carol');
SELECT warden.lockout_flush() \gset
SELECT lockouts FROM warden.login_attempts WHERE principal = 'carol';
-- A quiet period longer than max_lock_duration after the last lock forgets the lockouts.
UPDATE warden.login_attempts SET window_start = now() - interval '50 hours',
                                 locked_until = now() - interval '25 hours' WHERE principal = 'carol';
SELECT :d FROM warden.login_failed('carol');
SELECT :d FROM warden.login_failed('carol');

-- Permanent lock after N lockouts in a row.
UPDATE warden.lockout_policy SET lock_duration = '15 minutes', permanent_after = 2;
SELECT :d FROM warden.login_failed('dave');
SELECT :d FROM warden.login_failed('dave');
SELECT warden.lockout_flush() \gset
UPDATE warden.login_attempts SET window_start = now() - interval '20 minutes',
                                 locked_until = now() - interval '1 second' WHERE principal = 'dave';
SELECT :d FROM warden.login_failed('dave');
SELECT :d, locked_until FROM warden.login_failed('dave');
SELECT :d FROM warden.login_failed('dave');
UPDATE warden.lockout_policy SET threshold = 5, permanent_after = NULL;

-- Administration: unlock clears the lock and the counters; lock for a while or forever.
SELECT warden.unlock('dave') AS was_locked, warden.unlock('never-seen') AS was_locked_too;
SELECT :d FROM warden.login_succeeded('dave');
SELECT warden.lock('erin', '2 hours') > now() AS locked_for_a_while;
SELECT :d FROM warden.login_succeeded('erin');
SELECT warden.lock('frank') AS until;
SELECT :d FROM warden.login_failed('frank');
SELECT warden.is_locked('frank');

-- Known sources: a login succeeded from 198.51.100.7 before; failures from elsewhere lock
-- the account for other addresses but not for that one.
SELECT :d FROM warden.login_succeeded('grace', '198.51.100.7');
SELECT :d FROM warden.login_failed('grace', '203.0.113.1');
SELECT :d FROM warden.login_failed('grace', '203.0.113.2');
SELECT :d FROM warden.login_failed('grace', '203.0.113.3');
SELECT :d FROM warden.login_failed('grace', '203.0.113.4');
SELECT :d FROM warden.login_failed('grace', '203.0.113.5');
SELECT warden.is_locked('grace') AS elsewhere,
       warden.is_locked('grace', '198.51.100.7') AS from_usual_address,
       warden.is_locked('grace', '203.0.113.9') AS from_new_address;
SELECT :d FROM warden.login_succeeded('grace', '198.51.100.7');
SELECT :d FROM warden.login_succeeded('grace', '203.0.113.9');
SELECT :d FROM warden.login_failed('grace', '198.51.100.7');

-- Per-source throttling: one address may fail 3 times per window; after that it is
-- refused and its failures no longer count against any account.
UPDATE warden.lockout_policy SET source_threshold = 3;
SELECT i, :d FROM generate_series(1, 5) i, LATERAL warden.login_failed('victim' || i, '192.0.2.66');
SELECT warden.lockout_flush() \gset
SELECT principal, failures FROM warden.login_attempts WHERE principal LIKE 'victim%' ORDER BY 1;
SELECT warden.is_locked('victim1', '192.0.2.66') AS throttled_source,
       warden.is_locked('victim1', '192.0.2.67') AS other_source;
SELECT :d FROM warden.login_succeeded('victim1', '192.0.2.66');
-- Allow-listed sources are never throttled (their failures still count).
UPDATE warden.lockout_policy SET allowed_sources = '{192.0.2.0/24}';
SELECT :d FROM warden.login_failed('victim1', '192.0.2.66');
UPDATE warden.lockout_policy SET allowed_sources = '{}', source_threshold = NULL;
SELECT :d FROM warden.login_failed('victim2', '192.0.2.66');

-- Every failure, lockout, throttle and unlock is an event.
SELECT warden.lockout_flush() \gset
SELECT event_type, count(*) FROM warden.security_events GROUP BY 1 ORDER BY 1;
SELECT event_type, principal, source, failures, locked_until IS NOT NULL AS until_set, detail
FROM warden.security_events WHERE principal IN ('alice@example.com', 'dave', 'victim2') ORDER BY id;

-- Cleanup drops idle counters (not locked ones), ended throttle windows and old events.
SELECT warden.lockout_flush() \gset
UPDATE warden.login_attempts SET last_failure_at = now() - interval '8 days';
UPDATE warden.login_source_failures SET window_start = now() - interval '1 hour';
UPDATE warden.security_events SET occurred_at = now() - interval '91 days' WHERE principal = 'bob@example.com';
CALL warden.cleanup_login_attempts();
SELECT principal, known_source FROM warden.login_attempts ORDER BY 1, 2;
SELECT count(*) AS source_rows FROM warden.login_source_failures;
SELECT count(*) AS bob_events FROM warden.security_events WHERE principal = 'bob@example.com';

-- Bad input.
SELECT * FROM warden.login_failed(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM warden.login_succeeded('');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM warden.login_failed(repeat('x', 513));
\echo :LAST_ERROR_SQLSTATE
SELECT warden.is_locked(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT warden.unlock('');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.lock('erin', '0 seconds');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.lock('erin', '-1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM warden.login_failed('alice', 'not an address');
\echo :LAST_ERROR_SQLSTATE
UPDATE warden.lockout_policy SET threshold = 0;
\echo :LAST_ERROR_SQLSTATE
UPDATE warden.lockout_policy SET lock_duration = '-5 minutes';
\echo :LAST_ERROR_SQLSTATE
INSERT INTO warden.lockout_policy (id) VALUES (false);
\echo :LAST_ERROR_SQLSTATE
BEGIN;
DELETE FROM warden.lockout_policy;
SELECT * FROM warden.login_failed('alice');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- Privileges: applications decide logins; administrators lock, unlock and clean up.
CREATE ROLE regress_lockout_app IN ROLE warden_app;
SET ROLE regress_lockout_app;
SELECT :d FROM warden.login_failed('henry');
SELECT :d FROM warden.login_succeeded('henry');
SELECT warden.is_locked('henry'), warden.is_locked('henry', '10.1.1.1');
SELECT warden.unlock('alice@example.com');
\echo :LAST_ERROR_SQLSTATE
SELECT warden.lock('henry');
\echo :LAST_ERROR_SQLSTATE
CALL warden.cleanup_login_attempts();
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM warden.login_attempts;
\echo :LAST_ERROR_SQLSTATE
UPDATE warden.lockout_policy SET threshold = 1000;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_lockout_app;

DROP EXTENSION pg_warden CASCADE;
