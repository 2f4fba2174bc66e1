-- +goose Up
-- Failed-credential counters (SPEC §7), shared by every instance: one row
-- per bucket ("ip:<address>" or "client:<id>") and fixed window, counted up
-- with an upsert. Times are Unix seconds; the janitor deletes rows whose
-- window has ended.
CREATE TABLE rate_limits (
    bucket       TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    hits         BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
CREATE INDEX rate_limits_expires_idx ON rate_limits (expires_at);

-- +goose Down
DROP TABLE rate_limits;
