-- migrate:up
CREATE TABLE tokens (
    user_id bigint REFERENCES users (id),
    token text NOT NULL
);

-- migrate:down
DROP TABLE tokens;
