CREATE TABLE account_tokens (
    account_id bigint REFERENCES accounts (id),
    token text NOT NULL
);
