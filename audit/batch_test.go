package audit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage"
	"github.com/latchhq/latch/storage/pgtest"
)

// Concurrent recorders share inserts, and every event is stored before its
// Record returns: a caller that saw Record return can read its event.
func TestConcurrentRecordsAreAllStored(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	rec := env.App.Audit()
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprintf("batch-user-%d", i)
			rec.Record(ctx, audit.Event{Name: audit.KeyRotated, User: user})
			evs, err := env.App.Store.ListAudit(ctx, storage.AuditFilter{Subject: user, Limit: 10})
			if err != nil || len(evs) != 1 {
				t.Errorf("%s: event not stored when Record returned: %v %d", user, err, len(evs))
			}
		}()
	}
	wg.Wait()
	evs, err := env.App.Store.ListAudit(ctx, storage.AuditFilter{Event: audit.KeyRotated, Limit: 500})
	if err != nil || len(evs) != 64 {
		t.Fatalf("stored %d of 64 events: %v", len(evs), err)
	}
}

// Inside a transaction the event shares its fate: rolled back with it.
func TestRecordInsideTransactionRollsBackWithIt(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	rec := env.App.Audit()
	ctx := context.Background()
	boom := errors.New("boom")
	err := env.App.Store.InTx(ctx, func(ctx context.Context) error {
		rec.Record(ctx, audit.Event{Name: audit.KeyRotated, User: "tx-user"})
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if evs, _ := env.App.Store.ListAudit(ctx, storage.AuditFilter{Subject: "tx-user", Limit: 10}); len(evs) != 0 {
		t.Errorf("an event recorded in a rolled-back transaction was kept")
	}
}

// An insert that cannot finish is cut off at a third of the export settle
// window instead of waiting on: left running it could commit an id below
// events the export cursor has already served. Here another instance holds
// the table locked; Record gives up, logs, and nothing commits later.
func TestGroupCommitInsertHasADeadline(t *testing.T) {
	const settle = 1500 * time.Millisecond
	var logs latchtest.SyncBuffer
	dsn := pgtest.DSN(t)
	env := latchtest.Start(t, latchtest.Options{DSN: dsn, Log: &logs, Configure: func(c *config.Config) {
		c.Audit.ExportSettle = settle
	}})
	ctx := context.Background()
	other, err := storage.Open(dsn, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock := other.DB().WithContext(ctx).Begin()
	if err := lock.Exec("LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE").Error; err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() { once.Do(func() { lock.Rollback() }) }
	defer release()

	done := make(chan struct{})
	go func() {
		defer close(done)
		env.App.Audit().Record(ctx, audit.Event{Name: audit.KeyRotated, User: "blocked"})
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		release()
		<-done
		t.Fatal("Record waited on a blocked insert for a minute, past any settle window")
	}
	release()
	// A backend still holding the insert would now take the lock and
	// commit; wait until no insert into the table is running.
	for range 100 {
		var running int64
		if err := other.DB().Raw(`SELECT count(*) FROM pg_stat_activity
			WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE 'INSERT INTO "audit_events"%'`).Scan(&running).Error; err != nil {
			t.Fatal(err)
		}
		if running == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "audit: record event") {
		t.Errorf("the cut-off insert was not logged:\n%s", logs.String())
	}
	if evs, err := env.App.Store.ListAudit(ctx, storage.AuditFilter{Subject: "blocked", Limit: 10}); err != nil || len(evs) != 0 {
		t.Errorf("the cut-off insert committed after all: %v %v", evs, err)
	}
}
