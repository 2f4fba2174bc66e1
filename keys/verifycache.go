package keys

import (
	"sync"
	"time"

	"github.com/ory/fosite/token/jwt"
)

// verifiedCache remembers JWTs whose signature checked out, so a resource
// server introspecting the same access token many times (and userinfo) pays
// for one ECDSA verification, not one per call: verification is ~4x the
// cost of signing and was a third of introspection's CPU.
//
// It holds only what the signature proves. The caller still checks expiry
// and other claims on every use (fosite runs Claims.Valid after Decode), the
// token's kid must still be a live key on every hit, and revocation is a
// database check that does not go through here.
type verifiedCache struct {
	mu sync.RWMutex
	m  map[string]verifiedToken
}

type verifiedToken struct {
	tok *jwt.Token
	kid string
	exp time.Time
}

// maxVerified bounds the memory: a token and its parsed claims are a few
// kB, so the cache stays around 10 MB at most.
const (
	verifiedTTL = time.Minute
	maxVerified = 4096
)

func (c *verifiedCache) get(raw string, now time.Time) (*jwt.Token, string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[raw]
	if !ok || !now.Before(v.exp) {
		return nil, "", false
	}
	return v.tok, v.kid, true
}

func (c *verifiedCache) put(raw, kid string, tok *jwt.Token, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxVerified {
		// Starting over is cheaper than tracking recency, and only costs
		// one verification per token still in use.
		c.m = make(map[string]verifiedToken, 1024)
	}
	c.m[raw] = verifiedToken{tok: tok, kid: kid, exp: now.Add(verifiedTTL)}
}
