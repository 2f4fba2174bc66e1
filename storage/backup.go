package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/latchhq/latch/migrations"
)

// BackupSQLite writes a consistent copy of a SQLite database to path, which
// must not exist or be empty. VACUUM INTO reads inside one read transaction,
// so in WAL mode writers carry on while it runs and the copy is the database
// as of one instant, compacted, with no -wal file to forget.
func (s *Store) BackupSQLite(ctx context.Context, path string) error {
	if s.dialect != migrations.SQLite {
		return errors.New("storage: only SQLite databases are backed up this way")
	}
	if err := s.db.WithContext(ctx).Exec("VACUUM INTO ?", path).Error; err != nil {
		return fmt.Errorf("storage: back up to %s: %w", path, err)
	}
	return nil
}

// IntegrityCheck runs SQLite's quick_check and returns its complaint, or nil
// when the database is sound.
func (s *Store) IntegrityCheck(ctx context.Context) error {
	if s.dialect != migrations.SQLite {
		return nil
	}
	var res string
	if err := s.db.WithContext(ctx).Raw("PRAGMA quick_check").Scan(&res).Error; err != nil {
		return fmt.Errorf("storage: integrity check: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("storage: integrity check failed: %s", res)
	}
	return nil
}
