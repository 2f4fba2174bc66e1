package migrations

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/pressly/goose/v3/lock"
)

type lockWaitKey struct{}

type lockWait struct {
	every  time.Duration
	report func(waited time.Duration)
}

// WithLockWait returns a context under which Up, when another process holds
// the PostgreSQL migration lock, calls report at once and then every
// `every` while it waits, so an operator sees why `latch migrate` is not
// finishing (the wait can last minutes) instead of a silent terminal.
func WithLockWait(ctx context.Context, every time.Duration, report func(waited time.Duration)) context.Context {
	return context.WithValue(ctx, lockWaitKey{}, lockWait{every: every, report: report})
}

// reportingLocker is goose's advisory-lock locker with a first, immediate
// attempt: only when that fails is someone else migrating, and only then is
// the wait reported.
type reportingLocker struct {
	lock.SessionLocker
	id int64
}

func (l reportingLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	w, ok := ctx.Value(lockWaitKey{}).(lockWait)
	if !ok {
		return l.SessionLocker.SessionLock(ctx, conn)
	}
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", l.id).Scan(&got); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	if got {
		return nil
	}
	start := time.Now()
	w.report(0)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(w.every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				w.report(time.Since(start))
			}
		}
	})
	err := l.SessionLocker.SessionLock(ctx, conn)
	close(done)
	wg.Wait()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("another process held the migration lock for %s: let it finish (find it with SELECT pid FROM pg_locks WHERE locktype = 'advisory') and run `latch migrate` again: %w",
			time.Since(start).Round(time.Second), err)
	}
	return err
}
