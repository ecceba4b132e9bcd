CREATE TABLE accounts (
    id bigserial PRIMARY KEY,
    login text NOT NULL UNIQUE
);
