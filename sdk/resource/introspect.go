package resource

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// introCache keeps introspection answers briefly, keyed by the token's hash
// (the cache never holds a token).
type introCache struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[[32]byte]introEntry
}

type introEntry struct {
	claims *Claims // nil: inactive
	until  time.Time
}

const maxIntroEntries = 10_000

func (c *introCache) get(k [32]byte, now time.Time) (introEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !now.Before(e.until) {
		return introEntry{}, false
	}
	return e, true
}

func (c *introCache) put(k [32]byte, e introEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxIntroEntries {
		for key, old := range c.entries {
			if !now.Before(old.until) {
				delete(c.entries, key)
			}
		}
		if len(c.entries) >= maxIntroEntries {
			clear(c.entries)
		}
	}
	c.entries[k] = e
}

func (v *Verifier) introspect(ctx context.Context, scheme, token string) (*Claims, error) {
	if v.intro == nil {
		return nil, invalidToken(scheme, "malformed token (not a JWT)", nil)
	}
	now := v.now()
	key := sha256.Sum256([]byte(token))
	if e, ok := v.intro.get(key, now); ok {
		if e.claims == nil {
			return nil, invalidToken(scheme, "the token is not active", nil)
		}
		if err := v.checkClaims(e.claims, false); err != nil {
			return nil, invalidToken(scheme, err.Error(), nil)
		}
		return e.claims, nil
	}
	raw, err := v.callIntrospection(ctx, token)
	if err != nil {
		return nil, err
	}
	active, _ := raw["active"].(bool)
	var c *Claims
	if active {
		if c, err = claimsFrom(raw); err != nil {
			return nil, invalidToken(scheme, err.Error(), nil)
		}
	}
	if v.intro.ttl > 0 {
		until := now.Add(v.intro.ttl)
		if c != nil && !c.Expiry.IsZero() && c.Expiry.Before(until) {
			until = c.Expiry
		}
		v.intro.put(key, introEntry{claims: c, until: until}, now)
	}
	if c == nil {
		return nil, invalidToken(scheme, "the token is not active", nil)
	}
	if err := v.checkClaims(c, false); err != nil {
		return nil, invalidToken(scheme, err.Error(), nil)
	}
	return c, nil
}

func (v *Verifier) callIntrospection(ctx context.Context, token string) (map[string]any, error) {
	m, err := v.keys.metadata(ctx)
	if err != nil {
		return nil, err
	}
	if m.IntrospectionEndpoint == "" {
		return nil, fmt.Errorf("resource: %s has no introspection_endpoint", v.cfg.Issuer)
	}
	in := v.cfg.Introspection
	form := url.Values{"token": {token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.IntrospectionEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("resource: introspect: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if in.APIKey != "" {
		req.Header.Set("X-API-Key", in.APIKey)
	} else {
		req.SetBasicAuth(url.QueryEscape(in.ClientID), url.QueryEscape(in.ClientSecret))
	}
	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("resource: introspect: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("resource: introspect: status %d", resp.StatusCode)
	}
	raw := map[string]any{}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxDoc))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("resource: introspect: %w", err)
	}
	return raw, nil
}
