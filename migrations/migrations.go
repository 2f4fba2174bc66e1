// Package migrations holds Latch's versioned SQL schema, one set per
// database, embedded in the binary and applied with goose.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// Dialect names a schema set.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// advisoryLockID is the PostgreSQL advisory lock key that serialises
// concurrent `latch migrate` / `serve --migrate` runs ("latch" in ASCII).
const advisoryLockID = 0x6c61746368

func provider(db *sql.DB, d Dialect) (*goose.Provider, error) {
	sub, err := fs.Sub(files, string(d))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	var opts []goose.ProviderOption
	gd := goose.DialectSQLite3
	if d == Postgres {
		gd = goose.DialectPostgres
		// Instances started together wait for the one migrating: poll the
		// lock every second (goose's default is 5s) for up to 5 minutes.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(advisoryLockID), lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, fmt.Errorf("migrations: advisory lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(reportingLocker{locker, advisoryLockID}))
	}
	p, err := goose.NewProvider(gd, db, sub, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// Up applies every pending migration and returns the resulting version.
func Up(ctx context.Context, db *sql.DB, d Dialect) (int64, error) {
	p, err := provider(db, d)
	if err != nil {
		return 0, err
	}
	if _, err := p.Up(ctx); err != nil {
		return 0, fmt.Errorf("apply %s migrations: %w", d, err)
	}
	return p.GetDBVersion(ctx)
}

// ErrBehind reports a schema older than this binary expects.
var ErrBehind = errors.New("database schema is behind this version of latch")

// Check returns ErrBehind (wrapped with both versions) when migrations are
// pending, so `serve` can refuse to run against an old schema.
func Check(ctx context.Context, db *sql.DB, d Dialect) error {
	p, err := provider(db, d)
	if err != nil {
		return err
	}
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current < target {
		return fmt.Errorf("%w (database at version %d, latch needs %d)", ErrBehind, current, target)
	}
	return nil
}
