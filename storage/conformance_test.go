package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/latchhq/latch/storage"
	"github.com/latchhq/latch/storage/conformance"
	"github.com/latchhq/latch/storage/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func openDSN(t *testing.T, dsn string, opts storage.Options) *storage.Store {
	t.Helper()
	s, err := storage.Open(dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformanceSQLite(t *testing.T) {
	t.Parallel()
	conformance.Run(t, func(t *testing.T, opts storage.Options) *storage.Store {
		return openDSN(t, "sqlite://"+filepath.Join(t.TempDir(), "latch.db"), opts)
	})
}

func TestConformancePostgres(t *testing.T) {
	t.Parallel()
	pgtest.DSN(t) // skip or fail early, before any subtest
	conformance.Run(t, func(t *testing.T, opts storage.Options) *storage.Store {
		return openDSN(t, pgtest.DSN(t), opts)
	})
}
