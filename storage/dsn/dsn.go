// Package dsn parses Latch's database DSNs: the one place that decides which
// database a DSN selects, used by config's validation and by storage.Open
// alike, so a DSN the configuration accepts is one the store opens. It is a
// leaf (no database drivers) so config can use it.
package dsn

import (
	"errors"
	"fmt"
	"strings"
)

// Driver is the database a DSN selects.
type Driver string

// The databases Latch runs on.
const (
	SQLite   Driver = "sqlite"
	Postgres Driver = "postgres"
)

// DSN is a parsed database DSN.
type DSN struct {
	Driver Driver
	// Path is SQLite's database file (or :memory:); empty for PostgreSQL.
	Path string
	// URL is the PostgreSQL connection URL with its scheme in lower case,
	// the only form the driver recognises; empty for SQLite.
	URL string
}

// Parse reads "sqlite://PATH" or "postgres://..." ("postgresql://" too). The
// scheme is matched without regard to case, as URL schemes are (RFC 3986
// §3.1). Errors never repeat the DSN, which may carry a password: they
// name only its scheme.
func Parse(s string) (DSN, error) {
	if s == "" {
		return DSN{}, errors.New("is empty; use sqlite://PATH or postgres://...")
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		scheme = ""
	}
	switch strings.ToLower(scheme) {
	case "sqlite":
		if rest == "" {
			return DSN{}, fmt.Errorf("%q has no file path; use sqlite://PATH", s)
		}
		return DSN{Driver: SQLite, Path: rest}, nil
	case "postgres", "postgresql":
		return DSN{Driver: Postgres, URL: strings.ToLower(scheme) + "://" + rest}, nil
	}
	return DSN{}, fmt.Errorf("unsupported scheme %q; use sqlite://PATH or postgres://...", scheme)
}
