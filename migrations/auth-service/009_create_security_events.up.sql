-- The application's own security events (sign-ins, resets, MFA changes).
CREATE TABLE security_events (
    id          bigserial PRIMARY KEY,
    user_id     bigint REFERENCES users (id) ON DELETE SET NULL,
    event_type  text NOT NULL,
    ip          inet,
    user_agent  text,
    details     jsonb NOT NULL DEFAULT '{}',
    occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX security_events_user_id ON security_events (user_id, occurred_at);
CREATE INDEX security_events_occurred_at ON security_events (occurred_at);
