package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// checkSQLitePath explains up front why a SQLite file cannot be opened.
// SQLite itself reports every such case as SQLITE_CANTOPEN, which the
// pure-Go driver renders as "out of memory (14)": true to the C code, and
// useless to an operator whose directory is simply missing.
func checkSQLitePath(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("storage: cannot create SQLite database %s: directory %s does not exist; create it (mkdir -p %s) or point LATCH_DATABASE_DSN at an existing directory", path, dir, dir)
	case err != nil:
		return fmt.Errorf("storage: cannot use SQLite directory %s: %w; check its permissions or point LATCH_DATABASE_DSN elsewhere", dir, err)
	case !st.IsDir():
		return fmt.Errorf("storage: cannot create SQLite database %s: %s is a file, not a directory; point LATCH_DATABASE_DSN at a path inside a directory", path, dir)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("storage: SQLite database path %s is a directory; point LATCH_DATABASE_DSN at a file, e.g. sqlite://%s", path, filepath.Join(path, "latch.db"))
	}
	return nil
}

// cantOpen rewrites SQLite's "unable to open database file" for the cases
// checkSQLitePath cannot foresee (permissions, a full disk).
func cantOpen(path string, err error) error {
	return fmt.Errorf("storage: cannot open SQLite database %s (is its directory writable by this user, and the disk not full?): %w", path, err)
}
