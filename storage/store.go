// Package storage persists everything Latch knows — clients, grants, auth and
// login sessions, keys — in SQLite or PostgreSQL through GORM, and satisfies
// the fosite storage interfaces with the replay-detection contracts fosite
// relies on (spent codes and refresh tokens are kept, inactive, not deleted).
package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/latchhq/latch/migrations"
	dsnpkg "github.com/latchhq/latch/storage/dsn"
)

// Options tune the connection pool; zero values pick defaults per backend.
type Options struct {
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
	// ClientCacheTTL is how long a parsed client row is reused; 0 turns
	// the cache off. It bounds how stale another instance's view may be.
	ClientCacheTTL time.Duration
	// Now is the clock used for expiry decisions; nil means time.Now.
	Now func() time.Time
}

// Store is the one storage implementation; the dialect only changes how the
// connection is opened and which migration set applies.
type Store struct {
	db      *gorm.DB
	dialect migrations.Dialect
	now     func() time.Time
	clients *clientCache
	codes   codeMemo
	// external resolves client ids that are not rows (metadata
	// documents); nil resolves none.
	external ExternalClients
}

// Open connects to dsn ("sqlite://PATH" or "postgres://...", read by
// dsn.Parse just as config validation reads it). It does not migrate:
// callers decide with Migrate or CheckSchema.
func Open(dsn string, opts Options) (*Store, error) {
	var (
		dialector gorm.Dialector
		dialect   migrations.Dialect
	)
	parsed, err := dsnpkg.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("storage: database DSN: %w", err)
	}
	switch parsed.Driver {
	case dsnpkg.SQLite:
		if err := checkSQLitePath(parsed.Path); err != nil {
			return nil, err
		}
		if err := createPrivate(parsed.Path); err != nil {
			return nil, err
		}
		dialector = sqlite.Open(sqliteDSN(parsed.Path))
		dialect = migrations.SQLite
	case dsnpkg.Postgres:
		dialector = postgres.New(postgres.Config{DSN: parsed.URL})
		dialect = migrations.Postgres
	}
	db, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		// No GORM statement cache: it prepares on the pool while a
		// transaction holds a connection, which under a burst of racing
		// grants (every connection in a transaction waiting on one row lock)
		// deadlocks the pool. pgx already caches prepared statements per
		// connection.
		PrepareStmt: false,
		NowFunc:     func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		if dialect == migrations.SQLite {
			return nil, cantOpen(parsed.Path, err)
		}
		return nil, fmt.Errorf("storage: open %s: %w", dialect, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	applyPool(sqlDB, dialect, opts)
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Store{db: db, dialect: dialect, now: func() time.Time { return now().UTC() }, clients: newClientCache(opts.ClientCacheTTL)}
	if s.clients != nil {
		if err := s.clients.registerInvalidation(db); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
	}
	return s, nil
}

// createPrivate creates a new SQLite database file readable by its owner
// only (SPEC §1): it holds hashes, sealed keys and personal data. SQLite
// gives the -wal and -shm files the database file's mode. An existing file
// keeps the mode its operator chose.
func createPrivate(path string) error {
	if path == ":memory:" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil
	case err != nil:
		return fmt.Errorf("storage: create sqlite database: %w", err)
	}
	return f.Close()
}

// sqliteDSN turns a file path into a connection string: WAL lets readers run
// beside the one writer, busy_timeout makes writers queue instead of failing
// with "database is locked", and _txlock=immediate takes the write lock at
// BEGIN so a read-then-write transaction never deadlocks on lock upgrade.
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

func applyPool(db *sql.DB, d migrations.Dialect, o Options) {
	open, idle := o.MaxOpenConns, o.MaxIdleConns
	if open == 0 {
		open = 16
		if d == migrations.SQLite {
			// SQLite has one writer; more connections only add lock waits.
			open = 4
		}
	}
	if idle == 0 {
		idle = open
	}
	db.SetMaxOpenConns(open)
	db.SetMaxIdleConns(idle)
	if o.ConnMaxLifetime > 0 {
		db.SetConnMaxLifetime(o.ConnMaxLifetime)
	}
}

// Dialect says which backend this store runs on.
func (s *Store) Dialect() migrations.Dialect { return s.dialect }

// Migrate applies pending migrations (under an advisory lock on PostgreSQL).
func (s *Store) Migrate(ctx context.Context) (int64, error) {
	sqlDB, err := s.db.DB()
	if err != nil {
		return 0, err
	}
	return migrations.Up(ctx, sqlDB, s.dialect)
}

// CheckSchema fails with migrations.ErrBehind when migrations are pending.
func (s *Store) CheckSchema(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return migrations.Check(ctx, sqlDB, s.dialect)
}

// Ping reports whether the database answers (readiness).
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// Close releases the connection pool.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// DB exposes the GORM handle for tests and tools that count statements.
func (s *Store) DB() *gorm.DB { return s.db }

type txKey struct{}

// conn returns the transaction carried by ctx, or the pool.
func (s *Store) conn(ctx context.Context) *gorm.DB {
	if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return tx
	}
	return s.db.WithContext(ctx)
}

// BeginTX starts a transaction carried in the returned context
// (fosite's storage.Transactional); without it fosite's rotation is not atomic.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	if _, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return ctx, errors.New("storage: transaction already open in context")
	}
	tx := s.db.WithContext(ctx).Begin()
	if tx.Error != nil {
		return ctx, translate(tx.Error)
	}
	ctx = context.WithValue(ctx, txAuditKey{}, &txAudit{})
	return context.WithValue(ctx, txKey{}, tx), nil
}

// Commit commits the transaction carried by ctx, with the grant's audit
// row when this transaction stored the grant's access token (PendingAudit).
func (s *Store) Commit(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(*gorm.DB)
	if !ok {
		return errors.New("storage: no transaction in context")
	}
	if err := auditCommitDue(ctx); err != nil {
		_ = tx.Rollback()
		return err
	}
	p := pendingAudit(ctx)
	if p == nil || p.tx != tx {
		return translate(tx.Commit().Error)
	}
	p.tx = nil
	if err := s.writePending(ctx, tx, p); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit().Error; err != nil {
		return translate(err)
	}
	p.written = true
	return nil
}

// Rollback aborts the transaction carried by ctx; a grant's audit row it
// was to write stays unwritten.
func (s *Store) Rollback(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(*gorm.DB)
	if !ok {
		return errors.New("storage: no transaction in context")
	}
	if p := pendingAudit(ctx); p != nil && p.tx == tx {
		p.tx = nil
	}
	err := tx.Rollback().Error
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return translate(err)
}

// InTx runs fn in a transaction, joining one already carried by ctx.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
		return fn(ctx)
	}
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		return err
	}
	if err := fn(txCtx); err != nil {
		_ = s.Rollback(txCtx)
		return err
	}
	return s.Commit(txCtx)
}

// ErrUnavailable marks a failure to reach the database at all, so callers
// answer "try again later" instead of blaming the request (fosite would
// otherwise report a failed client lookup as invalid_client).
var ErrUnavailable = errors.New("storage: database unavailable")

// translate maps database errors to the errors callers branch on, so the
// OAuth layer answers a clear, retryable error instead of a 500.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	if errors.Is(err, driver.ErrBadConn) || errors.As(err, &connErr) || errors.As(err, &netErr) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505", pgErr.Code == "40001", pgErr.Code == "40P01":
			return fmt.Errorf("%w: %v", ErrConflict, err)
		case pgErr.Code == "23503":
			// A foreign key whose row a concurrent transaction deleted (a
			// grant of a client being deleted): that transaction won.
			return fmt.Errorf("%w: %v", ErrConflict, err)
		case strings.HasPrefix(pgErr.Code, "08"), strings.HasPrefix(pgErr.Code, "57P"):
			// Connection exceptions and operator intervention (shutdown).
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	msg := err.Error()
	if strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked") ||
		strings.Contains(msg, "FOREIGN KEY constraint failed") {
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return err
}

// InTransaction reports whether ctx carries a transaction of this store, so
// a caller can keep work that must commit or roll back with it inside it.
func InTransaction(ctx context.Context) bool {
	_, ok := ctx.Value(txKey{}).(*gorm.DB)
	return ok
}
