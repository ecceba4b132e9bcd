-- Role grants, optionally temporary (expires_at).
CREATE TABLE user_roles (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id    bigint NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    granted_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_expires_at ON user_roles (expires_at) WHERE expires_at IS NOT NULL;
