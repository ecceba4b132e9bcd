CREATE TABLE networks (
    id UUID PRIMARY KEY,
    created_at TIMESTAMP NOT NULL DEFAULT now()
);
