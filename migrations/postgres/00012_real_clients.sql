-- +goose Up
-- Client metadata real relying parties send (SPEC §2, §4): browser
-- origins allowed to call the token, revocation and userinfo endpoints,
-- the OpenID Connect application_type (empty for clients registered before
-- it existed), and a per-client refresh reuse interval in seconds.
ALTER TABLE clients ADD COLUMN allowed_cors_origins TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN application_type TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN refresh_reuse_interval INTEGER NOT NULL DEFAULT 0;
-- Claims the host app adds to access tokens and ID tokens at approval
-- (SPEC §3.3), kept with the session and the login it starts.
ALTER TABLE auth_sessions ADD COLUMN access_token_claims TEXT NOT NULL DEFAULT '{}';
ALTER TABLE auth_sessions ADD COLUMN id_token_claims TEXT NOT NULL DEFAULT '{}';
ALTER TABLE login_sessions ADD COLUMN access_token_claims TEXT NOT NULL DEFAULT '{}';
ALTER TABLE login_sessions ADD COLUMN id_token_claims TEXT NOT NULL DEFAULT '{}';
-- The token response a refresh gave, kept (sealed under the data key) for
-- the refresh reuse interval so a retry of the spent token gets it again
-- (SPEC §2). Keyed by the spent token's signature; successor is the new
-- refresh token's, whose use ends the grace.
CREATE TABLE refresh_replays (
    signature  TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    jkt        TEXT NOT NULL DEFAULT '',
    successor  TEXT NOT NULL,
    response   TEXT NOT NULL DEFAULT '',
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX refresh_replays_expires_idx ON refresh_replays (expires_at);

-- +goose Down
DROP TABLE refresh_replays;
ALTER TABLE login_sessions DROP COLUMN id_token_claims;
ALTER TABLE login_sessions DROP COLUMN access_token_claims;
ALTER TABLE auth_sessions DROP COLUMN id_token_claims;
ALTER TABLE auth_sessions DROP COLUMN access_token_claims;
ALTER TABLE clients DROP COLUMN refresh_reuse_interval;
ALTER TABLE clients DROP COLUMN application_type;
ALTER TABLE clients DROP COLUMN allowed_cors_origins;
