-- +goose Up
-- Clients identified by a metadata document (an https client_id) are never
-- rows of clients, yet their tokens need the grant lock like any other; so
-- grants no longer references clients. Deleting a client now deletes its
-- grant rows first, explicitly, in the same transaction (which waits for a
-- rotation in flight and then removes what it committed).
ALTER TABLE grants DROP CONSTRAINT IF EXISTS grants_client_id_fkey;

-- +goose Down
DELETE FROM grants WHERE client_id NOT IN (SELECT id FROM clients);
ALTER TABLE grants ADD CONSTRAINT grants_client_id_fkey
    FOREIGN KEY (client_id) REFERENCES clients (id) ON DELETE CASCADE;
