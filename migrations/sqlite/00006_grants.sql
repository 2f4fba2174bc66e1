-- +goose Up
-- One row per (user, client) pair that holds or held tokens: the lock that
-- every transaction issuing or revoking that pair's tokens takes first
-- (code exchange, refresh rotation, RFC 7009 revocation, reuse and code
-- replay detection, DELETE /api/users/{u}/authorizations/{c}, remembering
-- consent). Holding it before touching any token row is what makes a
-- revocation see, and deactivate, the pair a concurrent refresh commits.
-- Rows are created on first use by an upsert that is itself the lock, so
-- existing tokens need no backfill. Deleting the client deletes its rows,
-- and the foreign key stops a transaction still in flight for a deleted
-- client from issuing tokens to it.
CREATE TABLE grants (
    subject    TEXT NOT NULL,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (subject, client_id)
);
CREATE INDEX grants_client_idx ON grants (client_id);

-- +goose Down
DROP TABLE grants;
