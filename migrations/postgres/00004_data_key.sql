-- +goose Up
-- Secrets that derived keys hang off (the data key behind client-secret and
-- API-key hashes, code and refresh-token HMACs, DPoP nonces), sealed with the
-- master key. Keeping them here rather than deriving from the master key is
-- what lets `latch keys rewrap` change the master key without invalidating
-- every secret and token already issued.
CREATE TABLE key_material (
    name       TEXT PRIMARY KEY,
    sealed     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE key_material;
