-- +goose Up
-- The one-time verifier minted by approve/deny (SHA-256 of it; the value
-- itself exists only in the redirect_uri handed to the host app). Resume
-- needs it as well as the binding cookie, so whoever started a flow cannot
-- finish someone else's approval of it with the session id alone.
ALTER TABLE auth_sessions ADD COLUMN verifier_hash TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE auth_sessions DROP COLUMN verifier_hash;
