-- Stops auditing; the history already in warden.audit_log is kept (and expires with the
-- configured retention).
SELECT warden.disable_audit('api_keys');
SELECT warden.disable_audit('user_roles');
SELECT warden.disable_audit('roles');
SELECT warden.disable_audit('users');
