package cli_test

import (
	"context"
	"database/sql"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/latchhq/latch/cli"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/migrations"
	"github.com/latchhq/latch/storage/pgtest"
)

// migrationLockID is the advisory lock `latch migrate` takes ("latch").
const migrationLockID = 0x6c61746368

// holdMigrationLock takes the migration lock on its own connection, as a
// concurrent `latch migrate` elsewhere would, until release is called.
func holdMigrationLock(t *testing.T, dsn string) (release func()) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), "SELECT pg_advisory_lock($1)", int64(migrationLockID)); err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			conn.Close(context.Background()) // ends the session, and the lock with it
		}
	}
	t.Cleanup(release)
	return release
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// `latch migrate` blocked by another instance's migration says so at once
// instead of hanging silently, and finishes once the lock is free.
func TestMigrateSaysItWaitsForTheLock(t *testing.T) {
	dsn := pgtest.DSN(t)
	release := holdMigrationLock(t, dsn)
	env := []string{"LATCH_DATABASE_DSN=" + dsn, "LATCH_MASTER_KEY=" + latchtest.MasterKey, "LATCH_LOG_LEVEL=error"}
	out, errOut := &latchtest.SyncBuffer{}, &latchtest.SyncBuffer{}
	done := make(chan int, 1)
	go func() { done <- cli.Execute(t.Context(), []string{"migrate"}, env, out, errOut) }()

	waitFor(t, "the waiting line", func() bool { return strings.Contains(errOut.String(), "waiting for the migration lock") })
	select {
	case code := <-done:
		t.Fatalf("migrate finished (%d) while the lock was held", code)
	default:
	}
	want := "latch: waiting for the migration lock: another `latch migrate` or `latch serve --migrate` is migrating this database; this continues once it finishes\n"
	if errOut.String() != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
	release()
	if code := <-done; code != 0 || !strings.Contains(out.String(), "database schema at version") {
		t.Fatalf("migrate after release: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// While it waits, the progress callback keeps reporting; a free lock is
// taken without any report.
func TestMigrationLockWaitReportsWhileWaiting(t *testing.T) {
	dsn := pgtest.DSN(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	var reports atomic.Int32
	var last atomic.Int64
	ctx := migrations.WithLockWait(t.Context(), 20*time.Millisecond, func(waited time.Duration) {
		reports.Add(1)
		last.Store(int64(waited))
	})
	release := holdMigrationLock(t, dsn)
	done := make(chan error, 1)
	go func() { _, err := migrations.Up(ctx, db, migrations.Postgres); done <- err }()
	waitFor(t, "three progress reports", func() bool { return reports.Load() >= 3 })
	if last.Load() <= 0 {
		t.Errorf("later reports carry the time waited, got %s", time.Duration(last.Load()))
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	reports.Store(0)
	if _, err := migrations.Up(ctx, db, migrations.Postgres); err != nil {
		t.Fatal(err)
	}
	if n := reports.Load(); n != 0 {
		t.Errorf("a free lock was reported as waited for %d times", n)
	}
}
