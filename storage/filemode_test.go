package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/latchhq/latch/storage"
)

// The SQLite database and its WAL and shared-memory files hold hashes,
// sealed keys and personal data: owner-only, not the 0644 the driver gives
// them under the usual umask 022 (SPEC §1).
func TestSQLiteFilesAreOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	s := openDSN(t, "sqlite://"+path, storage.Options{})
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(p), err)
		}
		if m := st.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(p), m)
		}
	}
}
