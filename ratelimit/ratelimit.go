// Package ratelimit holds Latch's abuse limits (SPEC §7): request rates per
// client address, kept in each instance's memory (a flood spread over
// instances meets each instance's limit), and failed credentials per
// address and per client id, counted in the database so that every instance
// sees every failure.
//
// The client address is always the TCP peer, never a forwarded header that
// the client itself could write. Behind a reverse proxy every request
// therefore comes from the proxy, and the per-address limits act as global
// ones. IPv6 addresses are grouped by their /64 prefix, the smallest block
// one subscriber usually gets.
package ratelimit

import (
	"container/list"
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// ClientIP is the limiting key for r's sender: the TCP peer address, IPv6
// truncated to its /64.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.String()
	}
	return a.String()
}

// Limiter is a token bucket per key, in memory: each key may make a
// minute's worth of requests at once and then perMinute/60 per second. It
// tracks at most maxKeys keys; beyond that the least recently seen key is
// forgotten (a forgotten key starts again with a full bucket, so eviction
// can only ever let a request through, never refuse one).
type Limiter struct {
	rate  float64 // tokens per second
	burst float64
	max   int
	now   func() time.Time

	mu    sync.Mutex
	items map[string]*list.Element
	lru   list.List // front: most recently seen
}

type bucket struct {
	key    string
	tokens float64
	last   time.Time
}

// NewLimiter returns a limiter of perMinute requests per key, or nil (no
// limit) when perMinute is 0 or less.
func NewLimiter(perMinute, maxKeys int, now func() time.Time) *Limiter {
	if perMinute <= 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{rate: float64(perMinute) / 60, burst: float64(perMinute), max: max(maxKeys, 1), now: now,
		items: map[string]*list.Element{}}
}

// Allow takes one request from key's bucket. When the bucket is empty it
// returns false and how long until the next request would be allowed. A
// nil limiter allows everything.
func (l *Limiter) Allow(key string) (time.Duration, bool) {
	if l == nil {
		return 0, true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if el, ok := l.items[key]; ok {
		l.lru.MoveToFront(el)
		b = el.Value.(*bucket)
		if dt := now.Sub(b.last).Seconds(); dt > 0 {
			b.tokens = math.Min(l.burst, b.tokens+dt*l.rate)
		}
		b.last = now
	} else {
		if len(l.items) >= l.max {
			oldest := l.lru.Back()
			delete(l.items, oldest.Value.(*bucket).key)
			l.lru.Remove(oldest)
		}
		b = &bucket{key: key, tokens: l.burst, last: now}
		l.items[key] = l.lru.PushFront(b)
	}
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), false
	}
	b.tokens--
	return 0, true
}

// Len is the number of keys tracked.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.items)
}
