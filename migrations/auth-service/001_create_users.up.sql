-- Accounts. failed_login_attempts and account_locked_until feed pg_warden's lockout.
CREATE TABLE users (
    id                    bigserial PRIMARY KEY,
    email                 text NOT NULL UNIQUE,
    password_hash         text NOT NULL,
    failed_login_attempts int NOT NULL DEFAULT 0 CHECK (failed_login_attempts >= 0),
    account_locked_until  timestamptz,
    is_active             bool NOT NULL DEFAULT true,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
