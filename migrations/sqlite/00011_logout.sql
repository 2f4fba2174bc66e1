-- +goose Up
-- Sign-out (SPEC §3.8). A login session gets a public id, sid, which ID
-- tokens carry and logout tokens name; the cookie's hash stays the key the
-- browser finds it by. Sessions from before this release get a random sid.
ALTER TABLE login_sessions ADD COLUMN sid TEXT NOT NULL DEFAULT '';
UPDATE login_sessions SET sid = lower(hex(randomblob(16))) WHERE sid = '';
CREATE INDEX login_sessions_sid_idx ON login_sessions (sid);
CREATE INDEX login_sessions_subject_idx ON login_sessions (subject);

-- Every grant (code, and the token family it leads to, by request_id)
-- issued under a login session: who must hear of its end, and which tokens
-- the end may revoke. expires_at is the session's, so the janitor drops
-- rows of sessions that simply ran out. client_id has no foreign key: a
-- client identified by a metadata document (an https client id) is no row.
CREATE TABLE login_session_grants (
    sid        TEXT NOT NULL,
    request_id TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    offline    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (sid, request_id)
);
CREATE INDEX login_session_grants_client_idx ON login_session_grants (client_id);
CREATE INDEX login_session_grants_expires_idx ON login_session_grants (expires_at);

ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BOOLEAN NOT NULL DEFAULT FALSE;

-- The durable queue of back-channel logout tokens. id is the token's jti,
-- the same on every attempt so a receiver can drop a repeat. A worker
-- claims a due row by setting leased_until and a fresh lease_token; only
-- the holder of that lease may finish or reschedule it, and a lease that
-- runs out (its instance died) makes the row due again.
CREATE TABLE logout_deliveries (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject         TEXT NOT NULL,
    sid             TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    leased_until    TIMESTAMP,
    lease_token     TEXT NOT NULL DEFAULT '',
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMP NOT NULL
);
CREATE INDEX logout_deliveries_due_idx ON logout_deliveries (next_attempt_at);

-- +goose Down
DROP TABLE logout_deliveries;
ALTER TABLE clients DROP COLUMN backchannel_logout_session_required;
ALTER TABLE clients DROP COLUMN backchannel_logout_uri;
ALTER TABLE clients DROP COLUMN post_logout_redirect_uris;
DROP TABLE login_session_grants;
DROP INDEX login_sessions_subject_idx;
DROP INDEX login_sessions_sid_idx;
ALTER TABLE login_sessions DROP COLUMN sid;
