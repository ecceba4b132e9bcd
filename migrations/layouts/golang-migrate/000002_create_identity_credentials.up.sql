CREATE TABLE identity_credentials (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    identity_id bigint NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    config jsonb NOT NULL DEFAULT '{}'
);
