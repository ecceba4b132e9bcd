-- Wires the auth service to pg_warden's session expiry and account locking.
-- Needs pg_warden installed and a migration role that is a member of warden_admin.
-- The application role needs warden_app (and warden_admin for lock/unlock_user_account).

-- Sessions: deleted in batches one day after they expire (the day keeps them for
-- investigations); CALL expire_old_sessions() or the maintenance worker runs it.
SELECT warden.register_expiry('user_sessions', 'expires_at', 'delete',
                              batch_size => 5000, grace => '1 day');

-- Principals are e-mail addresses in lower case, so that "Alice@x" and "alice@x" share
-- one counter. users.failed_login_attempts and users.account_locked_until mirror pg_warden's
-- decision for the dashboards that read them; pg_warden's state is what decides.

-- Records a failed login and returns the decision: refuse the login while locked.
CREATE FUNCTION record_failed_login(p_email text, p_ip inet DEFAULT NULL)
RETURNS TABLE (locked boolean, locked_until timestamptz, failures integer,
               retry_after_seconds integer)
LANGUAGE plpgsql AS $$
DECLARE
    d record;
BEGIN
    SELECT * INTO d FROM warden.login_failed(lower(p_email), p_ip);
    UPDATE users u
       SET failed_login_attempts = d.failures,
           account_locked_until = CASE WHEN d.locked THEN d.locked_until END,
           updated_at = now()
     WHERE u.email = p_email
       AND (u.failed_login_attempts, u.account_locked_until)
           IS DISTINCT FROM (d.failures, CASE WHEN d.locked THEN d.locked_until END);
    RETURN QUERY SELECT d.locked, d.locked_until, d.failures, d.retry_after_seconds;
END
$$;

-- Records a successful password check; the login may proceed only if locked is false.
CREATE FUNCTION record_successful_login(p_email text, p_ip inet DEFAULT NULL)
RETURNS TABLE (locked boolean, locked_until timestamptz, failures integer,
               retry_after_seconds integer)
LANGUAGE plpgsql AS $$
DECLARE
    d record;
BEGIN
    SELECT * INTO d FROM warden.login_succeeded(lower(p_email), p_ip);
    IF NOT d.locked THEN
        UPDATE users u SET failed_login_attempts = 0, account_locked_until = NULL, updated_at = now()
         WHERE u.email = p_email
           AND (u.failed_login_attempts <> 0 OR u.account_locked_until IS NOT NULL);
    END IF;
    RETURN QUERY SELECT d.locked, d.locked_until, d.failures, d.retry_after_seconds;
END
$$;

-- Administrators: lock for p_minutes, or permanently when p_minutes is NULL.
CREATE FUNCTION lock_user_account(p_email text, p_minutes integer DEFAULT NULL)
RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    until timestamptz;
BEGIN
    IF p_minutes IS NOT NULL AND p_minutes <= 0 THEN
        RAISE EXCEPTION 'lock minutes must be positive, got %', p_minutes
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    until := warden.lock(lower(p_email), p_minutes * interval '1 minute');
    UPDATE users u SET account_locked_until = until, updated_at = now() WHERE u.email = p_email;
    RETURN until;
END
$$;

CREATE FUNCTION unlock_user_account(p_email text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    was_locked boolean;
BEGIN
    was_locked := warden.unlock(lower(p_email));
    UPDATE users u SET failed_login_attempts = 0, account_locked_until = NULL, updated_at = now()
     WHERE u.email = p_email;
    RETURN was_locked;
END
$$;

-- A session is valid while it has not expired (whether or not cleanup ran yet) and is active.
CREATE FUNCTION session_is_valid(p_session_id bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT warden.session_valid('user_sessions'::regclass, p_session_id)
       AND EXISTS (SELECT 1 FROM user_sessions s WHERE s.id = p_session_id AND s.status = 'active')
$$;

-- The old cleanup entry point, now batched: CALL expire_old_sessions();
CREATE PROCEDURE expire_old_sessions()
LANGUAGE plpgsql AS $$
BEGIN
    CALL warden.expire_rows('user_sessions'::regclass);
END
$$;
