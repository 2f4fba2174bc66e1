package conformance

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/storage"
)

// testRateLimits: failed-credential counters count per bucket and window,
// lose no concurrent hit (several instances count into the same rows), show
// only open windows that reached a threshold, and are purged once their
// window has ended.
func testRateLimits(t *testing.T, f *fixture) {
	ctx := f.ctx
	now := f.clock.Now().Unix()
	start, end := now-now%300, now-now%300+300

	got, err := f.s.AddHits(ctx, []string{"ip:192.0.2.1", "client:c1"}, start, end)
	must(t, err)
	if got["ip:192.0.2.1"] != 1 || got["client:c1"] != 1 || len(got) != 2 {
		t.Fatalf("first hits: %v", got)
	}
	got, err = f.s.AddHits(ctx, []string{"client:c1", "ip:192.0.2.1", "ip:192.0.2.1"}, start, end)
	must(t, err)
	if got["ip:192.0.2.1"] != 2 || got["client:c1"] != 2 {
		t.Fatalf("second hits (a repeated bucket counts once): %v", got)
	}
	// The next window starts from zero.
	got, err = f.s.AddHits(ctx, []string{"client:c1"}, end, end+300)
	must(t, err)
	if got["client:c1"] != 1 {
		t.Fatalf("next window: %v", got)
	}

	// Concurrent hits from many requests (or instances) are all counted.
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Two buckets in both orders: no deadlock between the upserts.
			b := []string{"ip:198.51.100.7", "client:race"}
			if i%2 == 1 {
				b = []string{"client:race", "ip:198.51.100.7"}
			}
			_, err := f.s.AddHits(ctx, b, start, end)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	got, err = f.s.AddHits(ctx, []string{"client:race"}, start, end)
	must(t, err)
	if got["client:race"] != n+1 {
		t.Fatalf("after %d concurrent hits and one more: %v", n, got)
	}

	hot, err := f.s.HotBuckets(ctx, now, 2, 10)
	must(t, err)
	gotHot := map[string]int64{}
	for _, h := range hot {
		if h.Expires != end {
			t.Errorf("%s expires at %d, want %d", h.Bucket, h.Expires, end)
		}
		gotHot[h.Bucket] = h.Hits
	}
	want := map[string]int64{"client:race": n + 1, "ip:198.51.100.7": n, "client:c1": 2, "ip:192.0.2.1": 2}
	if fmt.Sprint(gotHot) != fmt.Sprint(want) || hot[0].Bucket != "client:race" {
		t.Fatalf("hot buckets: %v, want %v, fullest first", hot, want)
	}
	if hot, err = f.s.HotBuckets(ctx, now, 3, 1); err != nil || len(hot) != 1 || hot[0].Bucket != "client:race" {
		t.Fatalf("hot buckets, at least 3, at most 1: %v %v", hot, err)
	}
	// A window that has ended is not hot, and the janitor removes it.
	if hot, err = f.s.HotBuckets(ctx, end, 1, 10); err != nil || len(hot) != 1 || hot[0].Expires != end+300 {
		t.Fatalf("hot buckets after the window: %v %v", hot, err)
	}
	f.clock.Advance(time.Duration(end-now) * time.Second)
	res, err := f.s.Purge(ctx, storage.JanitorOptions{BatchSize: 2})
	must(t, err)
	if res["rate_limits"] != 4 || f.count("rate_limits", "") != 1 {
		t.Fatalf("purge after the window: %v, %d rows left", res, f.count("rate_limits", ""))
	}
}
