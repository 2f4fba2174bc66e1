-- +goose Up
-- The audit trail operators hand to a security review. Rows never carry a
-- secret or token: details hold ids, scopes and reasons only.
CREATE TABLE audit_events (
    id         BIGSERIAL PRIMARY KEY,
    time       TIMESTAMPTZ NOT NULL,
    event      TEXT NOT NULL,
    actor_type TEXT NOT NULL DEFAULT '',
    actor_id   TEXT NOT NULL DEFAULT '',
    subject    TEXT NOT NULL DEFAULT '',
    client_id  TEXT NOT NULL DEFAULT '',
    ip         TEXT NOT NULL DEFAULT '',
    outcome    TEXT NOT NULL DEFAULT 'success',
    details    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_time_idx ON audit_events (time);
CREATE INDEX audit_events_subject_idx ON audit_events (subject, id);
CREATE INDEX audit_events_client_idx ON audit_events (client_id, id);

-- Secret rotation with an explicit grace period: the previous secret's hash
-- keeps working until rotated_secret_expires_at, then is ignored.
ALTER TABLE clients ADD COLUMN rotated_secret_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN rotated_secret_expires_at TIMESTAMPTZ;

-- +goose Down
ALTER TABLE clients DROP COLUMN rotated_secret_expires_at;
ALTER TABLE clients DROP COLUMN rotated_secret_hash;
DROP TABLE audit_events;
