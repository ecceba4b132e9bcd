CREATE TABLE identities (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schema_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
