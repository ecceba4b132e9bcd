-- Roles with a level: higher levels outrank lower ones.
CREATE TABLE roles (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    level       int NOT NULL DEFAULT 0 CHECK (level >= 0),
    description text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO roles (name, level, description) VALUES
    ('user', 10, 'a signed-up user'),
    ('support', 50, 'reads accounts, unlocks them'),
    ('admin', 100, 'everything');
