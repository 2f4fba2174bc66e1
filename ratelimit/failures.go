package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/latchhq/latch/storage"
)

// Counters is the shared store of failure counts (storage.Store).
type Counters interface {
	AddHits(ctx context.Context, buckets []string, windowStart, windowEnd int64) (map[string]int64, error)
	HotBuckets(ctx context.Context, now, min int64, limit int) ([]storage.Hits, error)
}

// FailureOptions configure Failures; a limit of 0 disables it.
type FailureOptions struct {
	// PerIP and PerClient are the failed credentials allowed per client
	// address and per client id in one Window.
	PerIP, PerClient int
	Window           time.Duration
	// Sync bounds how long this instance may go without reading the
	// counts other instances wrote: a source locked out through another
	// instance is refused here within this long. Failures seen here lock
	// at once.
	Sync time.Duration
	Now  func() time.Time
	Log  *slog.Logger
}

// Failures limits failed credentials (client secrets, client assertions,
// API keys) per address and per client id, in fixed windows counted in the
// database. A locked address or client id is refused before its
// credentials are checked, even correct ones: otherwise guessing would go on
// unhindered behind the refusals. Limiting by address and by client id
// separately means a client's own servers keep working while someone else
// fails against it, until the (higher) per-client limit is reached.
type Failures struct {
	o     FailureOptions
	store Counters

	mu      sync.Mutex
	locked  map[string]time.Time // bucket → end of its window
	synced  time.Time
	syncing bool
}

const (
	// maxHot bounds what one sync reads and this instance remembers.
	maxHot = 10000
	// maxBucketLen keeps long client ids (URLs) from making long keys.
	maxBucketLen = 128
)

// NewFailures returns the limiter, or nil (no limits) when both limits are
// 0.
func NewFailures(store Counters, o FailureOptions) *Failures {
	if o.PerIP <= 0 && o.PerClient <= 0 {
		return nil
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Window <= 0 {
		o.Window = 5 * time.Minute
	}
	return &Failures{o: o, store: store, locked: map[string]time.Time{}}
}

// Locked reports whether the address or the client id (either may be
// empty) is locked out, and for how long.
func (f *Failures) Locked(ctx context.Context, ip, clientID string) (time.Duration, bool) {
	if f == nil {
		return 0, false
	}
	f.sync(ctx)
	now := f.o.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	var wait time.Duration
	for _, b := range f.buckets(ip, clientID) {
		if until, ok := f.locked[b]; ok && until.After(now) {
			wait = max(wait, until.Sub(now))
		}
	}
	return wait, wait > 0
}

// Failed counts one failed credential from ip for clientID (either may be
// empty). A failure to count is logged, not returned: the request has
// failed already and must be answered as such.
func (f *Failures) Failed(ctx context.Context, ip, clientID string) {
	if f == nil {
		return
	}
	buckets := f.buckets(ip, clientID)
	if len(buckets) == 0 {
		return
	}
	start := f.o.Now().Truncate(f.o.Window)
	end := start.Add(f.o.Window)
	hits, err := f.store.AddHits(context.WithoutCancel(ctx), buckets, start.Unix(), end.Unix())
	if err != nil {
		f.o.Log.Warn("rate limit: counting a failed credential", "err", err)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for b, n := range hits {
		if n >= f.limit(b) && len(f.locked) < maxHot {
			f.locked[b] = end
		}
	}
}

// sync reads the buckets other instances pushed over a limit, at most once
// per Sync; requests arriving meanwhile use the view they find.
func (f *Failures) sync(ctx context.Context) {
	now := f.o.Now()
	f.mu.Lock()
	if f.syncing || now.Sub(f.synced) < f.o.Sync {
		f.mu.Unlock()
		return
	}
	f.syncing = true
	f.mu.Unlock()

	least := f.o.PerIP
	if least <= 0 || f.o.PerClient > 0 && f.o.PerClient < least {
		least = f.o.PerClient
	}
	hot, err := f.store.HotBuckets(ctx, now.Unix(), int64(least), maxHot)

	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncing = false
	if err != nil {
		// Keep the last view; the request goes on to a database that is
		// probably failing for it too.
		f.o.Log.Warn("rate limit: reading failure counts", "err", err)
		return
	}
	f.synced = now
	for b, until := range f.locked {
		if !until.After(now) {
			delete(f.locked, b)
		}
	}
	for _, h := range hot {
		if h.Hits >= f.limit(h.Bucket) && len(f.locked) < maxHot {
			f.locked[h.Bucket] = time.Unix(h.Expires, 0)
		}
	}
}

// buckets names the counters a failure from ip for clientID goes to, for
// the limits that are on.
func (f *Failures) buckets(ip, clientID string) []string {
	var out []string
	if ip != "" && f.o.PerIP > 0 {
		out = append(out, ipPrefix+ip)
	}
	if clientID != "" && f.o.PerClient > 0 {
		if len(clientID) > maxBucketLen {
			sum := sha256.Sum256([]byte(clientID))
			clientID = "sha256:" + hex.EncodeToString(sum[:])
		}
		out = append(out, clientPrefix+clientID)
	}
	return out
}

const (
	ipPrefix     = "ip:"
	clientPrefix = "client:"
)

// limit is the count at which bucket locks; a bucket of a disabled kind
// (written by an instance configured otherwise) never does.
func (f *Failures) limit(bucket string) int64 {
	n := f.o.PerClient
	if strings.HasPrefix(bucket, ipPrefix) {
		n = f.o.PerIP
	}
	if n <= 0 {
		return math.MaxInt64
	}
	return int64(n)
}
