package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/latchhq/latch/storage"
	"github.com/latchhq/latch/storage/conformance"
	"github.com/latchhq/latch/storage/pgtest"
)

// readAfter is one poll of an exporter that follows the log by id.
func readAfter(t *testing.T, s *storage.Store, f storage.AuditFilter) []storage.AuditEvent {
	t.Helper()
	f.Ascending, f.Limit = true, 100
	evs, err := s.ListAudit(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// On PostgreSQL an id is drawn from the sequence when the insert runs but
// the row is visible only when its transaction commits, so two instances
// can commit ids out of order. An exporter that pages "everything after the
// last id I saw" then jumps past the lower id and never sees it (issue 16
// item 10); the settled export cursor holds back until the lower id is
// final. SQLite cannot show this: its writers serialise on one lock, so the
// second insert waits until the first commits and ids commit in order.
func TestAuditExportCursorWaitsForOutOfOrderCommit(t *testing.T) {
	clock := conformance.NewClock()
	s := openDSN(t, pgtest.DSN(t), storage.Options{Now: clock.Now})
	ctx := context.Background()
	const settle = 30 * time.Second

	// Instance A draws id 1 and has not committed yet.
	txA, err := s.BeginTX(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Rollback(txA) }()
	if err := s.InsertAudit(txA, &storage.AuditEvent{Event: "key.rotated", Subject: "a"}); err != nil {
		t.Fatal(err)
	}
	// Instance B draws id 2 and commits at once.
	clock.Advance(time.Second)
	if err := s.InsertAudit(ctx, &storage.AuditEvent{Event: "key.rotated", Subject: "b"}); err != nil {
		t.Fatal(err)
	}

	naive := readAfter(t, s, storage.AuditFilter{})
	if len(naive) != 1 || naive[0].Subject != "b" {
		t.Fatalf("setup: want only b visible before a commits, got %+v", naive)
	}
	naiveCursor := naive[0].ID
	exported := readAfter(t, s, storage.AuditFilter{SettledBefore: clock.Now().Add(-settle)})
	if len(exported) != 0 {
		t.Fatalf("the export served %+v while a lower id was still in flight", exported)
	}

	if err := s.Commit(txA); err != nil {
		t.Fatal(err)
	}
	clock.Advance(settle + time.Second)

	// The naive cursor has moved past a for good: this is the bug.
	if again := readAfter(t, s, storage.AuditFilter{After: naiveCursor}); len(again) != 0 {
		t.Fatalf("setup: naive cursor read %+v", again)
	}
	exported = readAfter(t, s, storage.AuditFilter{SettledBefore: clock.Now().Add(-settle)})
	if len(exported) != 2 || exported[0].Subject != "a" || exported[1].Subject != "b" {
		t.Fatalf("export after settling = %+v, want a then b", exported)
	}
}

// A row stamped late but numbered low (a slow clock on another instance,
// or a long insert) stops the page even when younger-numbered rows have
// settled: serving those would move the cursor past it.
func TestAuditExportStopsAtFirstUnsettledRow(t *testing.T) {
	for name, dsn := range map[string]func(t *testing.T) string{
		"SQLite":   func(t *testing.T) string { return "sqlite://" + t.TempDir() + "/latch.db" },
		"Postgres": func(t *testing.T) string { return pgtest.DSN(t) },
	} {
		t.Run(name, func(t *testing.T) {
			clock := conformance.NewClock()
			s := openDSN(t, dsn(t), storage.Options{Now: clock.Now})
			ctx := context.Background()
			t0 := clock.Now()
			for i, at := range []time.Time{t0, t0.Add(time.Minute), t0, t0} {
				e := &storage.AuditEvent{Event: "key.rotated", Subject: string(rune('a' + i)), Time: at}
				if err := s.InsertAudit(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			evs := readAfter(t, s, storage.AuditFilter{SettledBefore: t0.Add(time.Second)})
			if len(evs) != 1 || evs[0].Subject != "a" {
				t.Fatalf("got %+v, want only a (b is unsettled, c and d come after it)", evs)
			}
			evs = readAfter(t, s, storage.AuditFilter{After: evs[0].ID, SettledBefore: t0.Add(2 * time.Minute)})
			if len(evs) != 3 || evs[0].Subject != "b" || evs[2].Subject != "d" {
				t.Fatalf("after settling got %+v, want b, c, d", evs)
			}
		})
	}
}
