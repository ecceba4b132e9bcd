-- Login sessions; tokens are stored hashed. Expired rows are pg_warden expiry's job.
CREATE TABLE user_sessions (
    id           bigserial PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz,
    status       text NOT NULL DEFAULT 'active'
                 CHECK (status IN ('active', 'expired', 'revoked')),
    ip           inet
);
CREATE INDEX user_sessions_user_id ON user_sessions (user_id);
CREATE INDEX user_sessions_expires_at ON user_sessions (expires_at);
