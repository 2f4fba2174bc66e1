package audit_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/migrations"
	"github.com/latchhq/latch/storage"
	"github.com/latchhq/latch/storage/conformance"
	"github.com/latchhq/latch/storage/pgtest"
)

// exporter follows GET /api/audit?after= the way a SIEM shipper would.
type exporter struct {
	env    *latchtest.Env
	query  string
	cursor string
	seen   []map[string]any
}

// poll reads pages until one is short, and reports how many events came.
func (x *exporter) poll(t *testing.T) int {
	t.Helper()
	n := 0
	for {
		path := "/api/audit?limit=20&" + x.query + "&after=" + url.QueryEscape(x.cursor)
		status, page := x.env.API("GET", path, nil)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, status, page)
		}
		evs, ok := page["events"].([]any)
		if !ok {
			t.Fatalf("GET %s: events is %T, want a list", path, page["events"])
		}
		for _, e := range evs {
			x.seen = append(x.seen, e.(map[string]any))
		}
		n += len(evs)
		if x.cursor, _ = page["next_cursor"].(string); x.cursor == "" {
			t.Fatalf("GET %s: an export page must always carry next_cursor", path)
		}
		if len(evs) < 20 {
			return n
		}
	}
}

// Two instances write many events while one of them holds an id in an
// open transaction past younger commits (the out-of-order commit of issue
// 16 item 10); an exporter polling all the while sees every event exactly
// once, in id order.
func TestExportSeesEveryEventOnce(t *testing.T) {
	for name, dsn := range map[string]func(t *testing.T) string{
		"SQLite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "latch.db") },
		"Postgres": func(t *testing.T) string { return pgtest.DSN(t) },
	} {
		t.Run(name, func(t *testing.T) { testExportOnce(t, dsn(t)) })
	}
}

func testExportOnce(t *testing.T, dsn string) {
	const settle = 1500 * time.Millisecond
	env := latchtest.Start(t, latchtest.Options{DSN: dsn, Configure: func(c *config.Config) {
		c.Audit.ExportSettle = settle
	}})
	ctx := context.Background()
	other, err := storage.Open(dsn, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	writers := []*audit.Recorder{env.App.Audit(), audit.New(other, nil).WithExportSettle(settle, nil)}
	want := map[string]bool{}
	record := func(rec *audit.Recorder, ctx context.Context, user string) {
		rec.Record(ctx, audit.Event{Name: audit.KeyRotated, User: user})
	}
	x := &exporter{env: env, query: "event=" + audit.KeyRotated}

	// Instance 0 draws an id and holds it uncommitted; instance 1 commits
	// a younger one; the exporter polls in between.
	held, err := env.App.Store.BeginTX(ctx)
	if err != nil {
		t.Fatal(err)
	}
	record(writers[0], held, "held")
	want["held"] = true
	heldDone := make(chan struct{})
	var heldErr error
	if env.App.Store.Dialect() == migrations.Postgres {
		record(writers[1], ctx, "younger")
		want["younger"] = true
		x.poll(t)
		go func() {
			defer close(heldDone)
			time.Sleep(settle / 4)
			heldErr = env.App.Store.Commit(held)
		}()
	} else {
		// SQLite serialises writers: the younger insert would wait for this
		// commit, so ids cannot commit out of order there.
		go func() { defer close(heldDone); heldErr = env.App.Store.Commit(held) }()
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	for w, rec := range writers {
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 40 {
					user := fmt.Sprintf("w%d-g%d-%d", w, g, i)
					mu.Lock()
					want[user] = true
					mu.Unlock()
					record(rec, ctx, user)
				}
			}()
		}
	}
	writing := make(chan struct{})
	go func() { wg.Wait(); <-heldDone; close(writing) }()
	for done := false; !done; {
		select {
		case <-writing:
			done = true
		case <-time.After(100 * time.Millisecond):
		}
		x.poll(t)
	}
	if heldErr != nil {
		t.Fatal(heldErr)
	}
	// Everything is written: once it has settled the export must be whole.
	time.Sleep(settle + 100*time.Millisecond)
	x.poll(t)

	got := map[string]int{}
	var last float64
	for _, e := range x.seen {
		if id := e["id"].(float64); id <= last {
			t.Errorf("export out of order: id %v after %v", id, last)
		} else {
			last = id
		}
		got[e["user"].(string)]++
	}
	for user := range want {
		if got[user] != 1 {
			t.Errorf("%s exported %d times, want once", user, got[user])
		}
	}
	if len(got) != len(want) {
		t.Errorf("exported %d distinct events, recorded %d", len(got), len(want))
	}
}

// The export cursor stands apart from the newest-first one, works with the
// filters, and a cursor it did not issue is a 400.
func TestExportCursorParameters(t *testing.T) {
	clock := conformance.NewClockAt(time.Now())
	env := latchtest.Start(t, latchtest.Options{Now: clock.Now})
	rec := env.App.Audit()
	ctx := context.Background()
	for _, u := range []string{"u1", "u2", "u1", "u1"} {
		rec.Record(ctx, audit.Event{Name: audit.KeyRotated, User: u})
	}
	x := &exporter{env: env, query: "user=u1"}
	if n := x.poll(t); n != 0 {
		t.Fatalf("served %d events younger than the settle window", n)
	}
	clock.Advance(audit.DefaultExportSettle + time.Second)
	if n := x.poll(t); n != 3 {
		t.Fatalf("user=u1 exported %d events, want 3", n)
	}
	if n := x.poll(t); n != 0 {
		t.Fatalf("polling again re-served %d events", n)
	}
	// A newest-first page has its own cursor; neither is taken for the other.
	_, page := env.API("GET", "/api/audit?limit=1&user=u1", nil)
	newest := page["next_cursor"].(string)
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, bad := range []string{
		"after=" + newest, "after=eA", "after=%25%25", "after=" + enc("after:-1"), "after=" + enc("after:x"),
		"cursor=" + x.cursor, "after=&cursor=" + newest, "after=&event=nope", "after=&since=yesterday",
	} {
		if status, body := env.API("GET", "/api/audit?"+bad, nil); status != http.StatusBadRequest || body["error"] == nil {
			t.Errorf("GET /api/audit?%s: %d %v, want 400 with an error", bad, status, body)
		}
	}
}
