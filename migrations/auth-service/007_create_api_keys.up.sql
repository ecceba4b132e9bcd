-- API keys: only a prefix (to find the key) and a hash are stored, never the key.
CREATE TABLE api_keys (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_prefix text NOT NULL,
    key_hash   text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_keys_key_prefix ON api_keys (key_prefix);
CREATE INDEX api_keys_user_id ON api_keys (user_id);
