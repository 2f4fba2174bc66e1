package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchhq/latch/ratelimit"
	"github.com/latchhq/latch/storage"
	"github.com/latchhq/latch/storage/conformance"
)

func TestClientIP(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.7:5555":                   "192.0.2.7",
		"[::ffff:192.0.2.7]:80":            "192.0.2.7",
		"[2001:db8:1:2:aaaa:bbbb:c:d]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2::99]:443":           "2001:db8:1:2::/64",
		"[fe80::1%eth0]:1":                 "fe80::/64",
	} {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {"203.0.113.9"}}}
		if got := ratelimit.ClientIP(r); got != want {
			t.Errorf("%s: %q, want %q", remote, got, want)
		}
	}
}

func TestLimiterRefillsAndRefuses(t *testing.T) {
	c := conformance.NewClockAt(time.Unix(1_000_000, 0))
	l := ratelimit.NewLimiter(60, 10, c.Now) // a minute's burst, then one a second
	for i := range 60 {
		if _, ok := l.Allow("a"); !ok {
			t.Fatalf("request %d refused within the burst", i+1)
		}
	}
	wait, ok := l.Allow("a")
	if ok || wait <= 0 || wait > time.Second {
		t.Fatalf("61st request: allowed %v, retry after %v", ok, wait)
	}
	if _, ok := l.Allow("b"); !ok {
		t.Fatal("another key shares the bucket")
	}
	c.Advance(time.Second)
	if _, ok := l.Allow("a"); !ok {
		t.Fatal("no refill after a second")
	}
	if _, ok := l.Allow("a"); ok {
		t.Fatal("refilled more than the rate")
	}
	if _, ok := ratelimit.NewLimiter(0, 10, c.Now).Allow("a"); !ok {
		t.Fatal("a limit of 0 refuses")
	}
}

// A flood from ever new addresses keeps memory bounded: the least recently
// seen keys are forgotten.
func TestLimiterTracksBoundedKeys(t *testing.T) {
	c := conformance.NewClockAt(time.Unix(1_000_000, 0))
	l := ratelimit.NewLimiter(1, 100, c.Now)
	for i := range 10_000 {
		l.Allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	if n := l.Len(); n != 100 {
		t.Fatalf("tracking %d keys, cap 100", n)
	}
	if _, ok := l.Allow("10.0.39.15"); ok { // the last one seen is still tracked and empty
		t.Fatal("recent key forgotten")
	}
}

func openStore(t *testing.T, dsn string, now func() time.Time) *storage.Store {
	t.Helper()
	s, err := storage.Open(dsn, storage.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// Two instances on one database: failures counted by either lock the
// source on both, by address and by client id separately.
func TestFailuresSharedAcrossInstances(t *testing.T) {
	c := conformance.NewClockAt(time.Date(2030, 1, 1, 0, 0, 10, 0, time.UTC))
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "latch.db")
	o := ratelimit.FailureOptions{PerIP: 4, PerClient: 6, Window: time.Minute, Sync: time.Second, Now: c.Now}
	a := ratelimit.NewFailures(openStore(t, dsn, c.Now), o)
	b := ratelimit.NewFailures(openStore(t, dsn, c.Now), o)
	ctx := context.Background()

	if _, locked := b.Locked(ctx, "192.0.2.1", "app"); locked { // b syncs now: nothing yet
		t.Fatal("locked before any failure")
	}
	a.Failed(ctx, "192.0.2.1", "app")
	a.Failed(ctx, "192.0.2.1", "app")
	b.Failed(ctx, "192.0.2.1", "app")
	if _, locked := a.Locked(ctx, "192.0.2.1", "app"); locked {
		t.Fatal("locked after 3 of 4 failures")
	}
	b.Failed(ctx, "192.0.2.1", "app") // the 4th, counted through b
	if _, locked := b.Locked(ctx, "192.0.2.1", ""); !locked {
		t.Fatal("b: address not locked after 4 failures")
	}
	// a has not synced within the last second: it learns within Sync.
	c.Advance(time.Second)
	wait, locked := a.Locked(ctx, "192.0.2.1", "")
	if !locked || wait != 49*time.Second {
		t.Fatalf("a: locked %v for %v, want until the window ends (49s)", locked, wait)
	}
	// Another address is unaffected until the client's own limit is hit.
	if _, locked := a.Locked(ctx, "198.51.100.2", "app"); locked {
		t.Fatal("another address is locked out of the client")
	}
	a.Failed(ctx, "198.51.100.3", "app")
	a.Failed(ctx, "198.51.100.4", "app")
	if _, locked := a.Locked(ctx, "198.51.100.2", "app"); !locked {
		t.Fatal("client not locked after 6 failures from several addresses")
	}
	if _, locked := a.Locked(ctx, "198.51.100.2", "other-app"); locked {
		t.Fatal("another client is locked")
	}
	// A new window starts afresh.
	c.Advance(50 * time.Second)
	if _, locked := a.Locked(ctx, "192.0.2.1", "app"); locked {
		t.Fatal("still locked in the next window")
	}
}
