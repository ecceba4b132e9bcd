-- Audit trail (pg_warden) on the tables that decide who may do what. Secrets are never
-- stored: for users.password_hash and api_keys.key_hash the log records only that they
-- changed (excluded_changed), never a value. user_sessions and the login counters are
-- covered by pg_warden's session expiry and lockout instead of the audit log.
SELECT warden.enable_audit('users', exclude_columns => '{password_hash}');
SELECT warden.enable_audit('roles');
SELECT warden.enable_audit('user_roles');
SELECT warden.enable_audit('api_keys', exclude_columns => '{key_hash}');
