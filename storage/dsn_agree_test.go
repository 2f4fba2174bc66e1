package storage_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/storage"
	"github.com/latchhq/latch/storage/pgtest"
)

// TestOpenAgreesWithConfig: every DSN configuration validation accepts,
// storage.Open opens, and every one it refuses, Open refuses too; config
// used to accept SQLite://x, which Open then rejected at start-up.
func TestOpenAgreesWithConfig(t *testing.T) {
	dir := t.TempDir()
	rows := []struct {
		name string
		dsn  func(t *testing.T) string
		ok   bool
	}{
		{"sqlite", func(*testing.T) string { return "sqlite://" + filepath.Join(dir, "a.db") }, true},
		{"SQLite", func(*testing.T) string { return "SQLite://" + filepath.Join(dir, "b.db") }, true},
		{"SQLITE", func(*testing.T) string { return "SQLITE://" + filepath.Join(dir, "c.db") }, true},
		{"POSTGRESQL", func(t *testing.T) string { return withScheme(t, pgtest.DSN(t), "POSTGRESQL") }, true},
		{"Postgres", func(t *testing.T) string { return withScheme(t, pgtest.DSN(t), "Postgres") }, true},
		{"sqlite without a path", func(*testing.T) string { return "sqlite://" }, false},
		{"mysql", func(*testing.T) string { return "mysql://u:hunter2@127.0.0.1:1/db" }, false},
		{"empty", func(*testing.T) string { return "" }, false},
		{"no scheme", func(*testing.T) string { return filepath.Join(dir, "d.db") }, false},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			dsn := row.dsn(t)
			cfg := config.Default()
			cfg.Database.DSN = dsn
			cfg.MasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
			var ve *config.ValidationError
			if err := cfg.Validate(); err != nil && !errors.As(err, &ve) {
				t.Fatalf("Validate: %v", err)
			}
			configOK := true
			if ve != nil {
				for _, p := range ve.Problems {
					configOK = configOK && p.Key != "database.dsn"
				}
			}
			s, err := storage.Open(dsn, storage.Options{})
			if err == nil {
				s.Close()
			}
			if configOK != row.ok || (err == nil) != row.ok {
				t.Errorf("config accepts: %v (%v); storage.Open: %v; want both %v", configOK, ve, err, row.ok)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("storage.Open error repeats the password: %v", err)
			}
		})
	}
}

// withScheme gives dsn another spelling of its scheme.
func withScheme(t *testing.T, dsn, scheme string) string {
	t.Helper()
	_, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		t.Fatalf("pgtest DSN %q has no scheme", dsn)
	}
	return scheme + "://" + rest
}
