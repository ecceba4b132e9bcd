CREATE TABLE permissions (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    description text
);
CREATE TABLE role_permissions (
    role_id       bigint NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permission_id bigint NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    PRIMARY KEY (role_id, permission_id)
);
INSERT INTO permissions (name, description) VALUES
    ('users.read', 'read accounts'),
    ('users.unlock', 'unlock locked accounts'),
    ('users.write', 'change accounts'),
    ('audit.read', 'read the audit trail');
INSERT INTO role_permissions (role_id, permission_id)
SELECT r.id, p.id FROM roles r JOIN permissions p
  ON (r.name = 'admin')
  OR (r.name = 'support' AND p.name IN ('users.read', 'users.unlock'));
