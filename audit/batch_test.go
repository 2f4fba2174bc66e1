package audit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage"
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
