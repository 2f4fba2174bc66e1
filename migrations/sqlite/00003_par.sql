-- +goose Up
-- Pushed authorization requests (RFC 9126), keyed by a hash of the
-- request_uri so the database never holds a usable one. A row is spent
-- (used = TRUE) by its first redemption and refused once expired.
CREATE TABLE par_requests (
    request_uri_hash TEXT PRIMARY KEY,
    request_id       TEXT NOT NULL,
    client_id        TEXT NOT NULL,
    redirect_uri     TEXT NOT NULL DEFAULT '',
    form             TEXT NOT NULL,
    used             BOOLEAN NOT NULL DEFAULT FALSE,
    requested_at     TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL
);
CREATE INDEX par_requests_expires_idx ON par_requests (expires_at);

-- fosite accepts exactly one algorithm for a client's private_key_jwt
-- assertions; empty means "derive it from the client's keys".
ALTER TABLE clients ADD COLUMN token_endpoint_auth_signing_alg TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE clients DROP COLUMN token_endpoint_auth_signing_alg;
DROP TABLE par_requests;
