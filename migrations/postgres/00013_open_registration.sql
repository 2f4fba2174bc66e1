-- +goose Up
-- Remembered authorizations of clients identified by a metadata document
-- are kept per redirect URI too: two installations of one agent share a
-- client_id but never a grant (SPEC §6). Other clients keep ''.
ALTER TABLE authorizations ADD COLUMN redirect_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE authorizations DROP CONSTRAINT authorizations_pkey;
ALTER TABLE authorizations ADD PRIMARY KEY (subject, client_id, redirect_uri);

-- Dynamic registration (RFC 7591/7592): the registration access token's
-- hash, whether the client registered itself, and whether it ever obtained
-- a token (the janitor deletes those that never did after an idle period).
ALTER TABLE clients ADD COLUMN registration_token_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN dynamic BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN obtained_token BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX clients_dynamic_idx ON clients (dynamic, obtained_token, created_at);

-- Initial access tokens for LATCH_REGISTRATION=token (hash only).
CREATE TABLE registration_tokens (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    max_uses    INTEGER NOT NULL DEFAULT 0,
    uses        INTEGER NOT NULL DEFAULT 0,
    expires_at  TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE registration_tokens;
DROP INDEX clients_dynamic_idx;
ALTER TABLE clients DROP COLUMN obtained_token;
ALTER TABLE clients DROP COLUMN dynamic;
ALTER TABLE clients DROP COLUMN registration_token_hash;
DELETE FROM authorizations WHERE redirect_uri <> '';
ALTER TABLE authorizations DROP CONSTRAINT authorizations_pkey;
ALTER TABLE authorizations DROP COLUMN redirect_uri;
ALTER TABLE authorizations ADD PRIMARY KEY (subject, client_id);
