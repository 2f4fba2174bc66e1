-- +goose Up
-- Clients identified by a metadata document (an https client_id) are never
-- rows of clients, yet their tokens need the grant lock like any other; so
-- grants no longer references clients. Deleting a client now deletes its
-- grant rows first, explicitly, in the same transaction (which waits for a
-- rotation in flight and then removes what it committed).
CREATE TABLE grants_new (
    subject    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (subject, client_id)
);
INSERT INTO grants_new (subject, client_id, created_at, updated_at)
    SELECT subject, client_id, created_at, updated_at FROM grants;
DROP TABLE grants;
ALTER TABLE grants_new RENAME TO grants;
CREATE INDEX grants_client_idx ON grants (client_id);

-- +goose Down
CREATE TABLE grants_old (
    subject    TEXT NOT NULL,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (subject, client_id)
);
INSERT INTO grants_old (subject, client_id, created_at, updated_at)
    SELECT subject, client_id, created_at, updated_at FROM grants
    WHERE client_id IN (SELECT id FROM clients);
DROP TABLE grants;
ALTER TABLE grants_old RENAME TO grants;
CREATE INDEX grants_client_idx ON grants (client_id);
