// Package scaleout holds no production code: its tests run Latch the way a
// scaled-out deployment does — several instances on one PostgreSQL (and the
// same races on SQLite) — and check that every race has exactly one winner,
// that instances need no sticky sessions, that migrations are safe to start
// concurrently, and that the janitor keeps tables bounded.
package scaleout
