-- Former password hashes, so a password is not reused.
CREATE TABLE password_history (
    id            bigserial PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX password_history_user_id ON password_history (user_id, created_at DESC);
