-- +goose Up
CREATE TABLE clients (
    id                           TEXT PRIMARY KEY,
    secret_hash                  TEXT NOT NULL DEFAULT '',
    public                       BOOLEAN NOT NULL DEFAULT FALSE,
    client_name                  TEXT NOT NULL DEFAULT '',
    redirect_uris                TEXT NOT NULL DEFAULT '[]',
    grant_types                  TEXT NOT NULL DEFAULT '[]',
    response_types               TEXT NOT NULL DEFAULT '[]',
    scope                        TEXT NOT NULL DEFAULT '',
    audience                     TEXT NOT NULL DEFAULT '[]',
    token_endpoint_auth_method   TEXT NOT NULL DEFAULT 'client_secret_basic',
    jwks                         TEXT NOT NULL DEFAULT '',
    jwks_uri                     TEXT NOT NULL DEFAULT '',
    logo_uri                     TEXT NOT NULL DEFAULT '',
    client_uri                   TEXT NOT NULL DEFAULT '',
    policy_uri                   TEXT NOT NULL DEFAULT '',
    tos_uri                      TEXT NOT NULL DEFAULT '',
    contacts                     TEXT NOT NULL DEFAULT '[]',
    owner                        TEXT NOT NULL DEFAULT '',
    id_token_signed_response_alg TEXT NOT NULL DEFAULT '',
    dpop_bound_access_tokens     BOOLEAN NOT NULL DEFAULT FALSE,
    require_pushed_authorization_requests BOOLEAN NOT NULL DEFAULT FALSE,
    created_at                   TIMESTAMP NOT NULL,
    updated_at                   TIMESTAMP NOT NULL
);
CREATE INDEX clients_owner_idx ON clients (owner, id);

-- One row per code, access token, refresh token, OIDC or PKCE record, keyed by
-- the token's signature (never the token). request_id ties a grant's family.
CREATE TABLE oauth2_tokens (
    kind             TEXT NOT NULL,
    signature        TEXT NOT NULL,
    request_id       TEXT NOT NULL,
    client_id        TEXT NOT NULL,
    subject          TEXT NOT NULL DEFAULT '',
    active           BOOLEAN NOT NULL DEFAULT TRUE,
    access_signature TEXT NOT NULL DEFAULT '',
    requested_at     TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL,
    data             TEXT NOT NULL,
    PRIMARY KEY (kind, signature)
);
CREATE INDEX oauth2_tokens_request_idx ON oauth2_tokens (request_id);
CREATE INDEX oauth2_tokens_expires_idx ON oauth2_tokens (expires_at);
CREATE INDEX oauth2_tokens_client_subject_idx ON oauth2_tokens (client_id, subject);

CREATE TABLE auth_sessions (
    id                TEXT PRIMARY KEY,
    client_id         TEXT NOT NULL,
    request_form      TEXT NOT NULL,
    requested_scopes  TEXT NOT NULL DEFAULT '[]',
    browser_hash      TEXT NOT NULL,
    login_subject     TEXT NOT NULL DEFAULT '',
    state             TEXT NOT NULL,
    subject           TEXT NOT NULL DEFAULT '',
    granted_scopes    TEXT NOT NULL DEFAULT '[]',
    claims            TEXT NOT NULL DEFAULT '{}',
    remember          BOOLEAN NOT NULL DEFAULT FALSE,
    auth_time         TIMESTAMP,
    acr               TEXT NOT NULL DEFAULT '',
    error_description TEXT NOT NULL DEFAULT '',
    created_at        TIMESTAMP NOT NULL,
    expires_at        TIMESTAMP NOT NULL,
    decided_at        TIMESTAMP
);
CREATE INDEX auth_sessions_expires_idx ON auth_sessions (expires_at);

CREATE TABLE login_sessions (
    id_hash    TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    auth_time  TIMESTAMP NOT NULL,
    acr        TEXT NOT NULL DEFAULT '',
    claims     TEXT NOT NULL DEFAULT '{}',
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX login_sessions_expires_idx ON login_sessions (expires_at);

CREATE TABLE authorizations (
    subject    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL DEFAULT '[]',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (subject, client_id)
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL DEFAULT '',
    hash         TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMP NOT NULL,
    revoked_at   TIMESTAMP
);

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    public_jwk     TEXT NOT NULL,
    private_sealed TEXT NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    activates_at   TIMESTAMP NOT NULL,
    retires_at     TIMESTAMP
);

-- Replay cache for JWT ids (client assertions, DPoP proofs), shared by all
-- instances because it lives here.
CREATE TABLE seen_jtis (
    jti_hash   TEXT PRIMARY KEY,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX seen_jtis_expires_idx ON seen_jtis (expires_at);

-- +goose Down
DROP TABLE seen_jtis;
DROP TABLE signing_keys;
DROP TABLE api_keys;
DROP TABLE authorizations;
DROP TABLE login_sessions;
DROP TABLE auth_sessions;
DROP TABLE oauth2_tokens;
DROP TABLE clients;
