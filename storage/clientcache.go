package storage

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
)

// clientCache keeps parsed client rows in memory for a short time. Without
// it every token request reads and parses the client row two to four times
// (client authentication, then once per stored token fosite rebuilds).
//
// Invalidation: any write to the clients table through this store empties
// the cache at once (a GORM callback, so write paths added later are covered
// without remembering to call anything). Writes made by another instance
// are seen here after at most ttl: that bound, a few seconds by default, is
// how long a deleted client or a rotated secret may still work on another
// instance sharing the database.
type clientCache struct {
	ttl time.Duration
	now func() time.Time // monotonic: never the store's injectable clock

	mu sync.RWMutex
	m  map[string]cachedClient
	// gen changes on every invalidation, so a read that raced a write does
	// not put the old row back.
	gen uint64
}

type cachedClient struct {
	c   *Client
	exp time.Time
}

// maxCachedClients bounds memory if many distinct ids are looked up; past it
// the cache starts over rather than tracking recency.
const maxCachedClients = 10000

func newClientCache(ttl time.Duration) *clientCache {
	if ttl <= 0 {
		return nil
	}
	return &clientCache{ttl: ttl, now: time.Now, m: map[string]cachedClient{}}
}

func (cc *clientCache) get(id string) (*Client, uint64, bool) {
	cc.mu.RLock()
	defer cc.mu.RUnlock()
	e, ok := cc.m[id]
	if !ok || !cc.now().Before(e.exp) {
		return nil, cc.gen, false
	}
	return e.c, cc.gen, true
}

func (cc *clientCache) put(c *Client, gen uint64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if gen != cc.gen {
		return
	}
	if len(cc.m) >= maxCachedClients {
		clear(cc.m)
	}
	cc.m[c.ID] = cachedClient{c: c, exp: cc.now().Add(cc.ttl)}
}

func (cc *clientCache) invalidate() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	clear(cc.m)
}

// registerInvalidation empties the cache after every write to clients (and
// after any raw statement naming the table). A read that runs
// between a transactional write and its commit can still cache the old row;
// ttl bounds that, as it bounds other instances' writes.
func (cc *clientCache) registerInvalidation(db *gorm.DB) error {
	inv := func(tx *gorm.DB) {
		if tx.Statement != nil && tx.Statement.Table == "clients" {
			cc.invalidate()
		}
	}
	cb := db.Callback()
	for _, err := range []error{
		cb.Create().After("*").Register("latch:clientcache", inv),
		cb.Update().After("*").Register("latch:clientcache", inv),
		cb.Delete().After("*").Register("latch:clientcache", inv),
		cb.Raw().After("*").Register("latch:clientcache", func(tx *gorm.DB) {
			if strings.Contains(tx.Statement.SQL.String(), "clients") {
				cc.invalidate()
			}
		}),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// cachedClient returns the client from the cache or the database. A miss
// inside a transaction reads through the transaction and is not cached: the
// row it sees may not be committed yet.
func (s *Store) cachedClient(ctx context.Context, id string) (*Client, error) {
	if s.external != nil && s.external.Handles(id) {
		return s.external.Client(ctx, id)
	}
	if s.clients == nil {
		return s.loadClient(ctx, id)
	}
	c, gen, ok := s.clients.get(id)
	if ok {
		return c, nil
	}
	c, err := s.loadClient(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, inTx := ctx.Value(txKey{}).(*gorm.DB); !inTx {
		s.clients.put(c, gen)
	}
	return c, nil
}

func (s *Store) loadClient(ctx context.Context, id string) (*Client, error) {
	var c Client
	if err := s.conn(ctx).Where("id = ?", id).Take(&c).Error; err != nil {
		return nil, translate(err)
	}
	return &c, nil
}

// clone copies a client so a caller may change it without touching the
// cached one.
func (c *Client) clone() *Client {
	cp := *c
	for _, p := range []*[]string{&cp.RedirectURIs, &cp.GrantTypes, &cp.ResponseTypes, &cp.Audience, &cp.Contacts, &cp.AllowedCORSOrigins, &cp.PostLogoutRedirectURIs} {
		*p = slices.Clone(*p)
	}
	return &cp
}
