DROP PROCEDURE expire_old_sessions();
DROP FUNCTION session_is_valid(bigint);
DROP FUNCTION unlock_user_account(text);
DROP FUNCTION lock_user_account(text, integer);
DROP FUNCTION record_successful_login(text, inet);
DROP FUNCTION record_failed_login(text, inet);
SELECT warden.unregister_expiry('user_sessions');
