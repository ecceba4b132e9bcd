-- Application audit trail with the row images as JSONB.
CREATE TABLE audit_logs (
    id          bigserial PRIMARY KEY,
    user_id     bigint REFERENCES users (id) ON DELETE SET NULL,
    action      text NOT NULL,
    table_name  text,
    record_id   text,
    old_values  jsonb,
    new_values  jsonb,
    ip          inet,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_logs_created_at ON audit_logs (created_at);
CREATE INDEX audit_logs_user_id ON audit_logs (user_id);
