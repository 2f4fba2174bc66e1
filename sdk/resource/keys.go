package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// metadata is the part of Latch's discovery document the middleware uses.
type metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// keySet is Latch's JWKS, fetched on first use and again when a token names
// a kid it does not hold — at most once per refetch interval, so a flood of
// made-up kids cannot turn into a flood of fetches.
type keySet struct {
	hc       *http.Client
	issuer   string
	now      func() time.Time
	interval time.Duration

	mu        sync.Mutex // held across fetches: concurrent misses share one
	meta      *metadata
	keys      map[string]jose.JSONWebKey
	fetchedAt time.Time
	fetches   int
}

// discover reads the issuer's metadata once (a failure is retried on the
// next request, so the API can start before Latch).
func (k *keySet) discover(ctx context.Context) (*metadata, error) {
	if k.meta != nil {
		return k.meta, nil
	}
	var lastErr error
	for _, p := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		var m metadata
		if err := getJSON(ctx, k.hc, k.issuer+p, &m); err != nil {
			lastErr = err
			continue
		}
		if m.Issuer != k.issuer {
			return nil, fmt.Errorf("resource: discovery at %s names issuer %q", k.issuer, m.Issuer)
		}
		if m.JWKSURI == "" {
			return nil, fmt.Errorf("resource: discovery at %s has no jwks_uri", k.issuer)
		}
		k.meta = &m
		return k.meta, nil
	}
	return nil, fmt.Errorf("resource: discovery: %w", lastErr)
}

// Metadata returns the issuer's discovery document.
func (k *keySet) metadata(ctx context.Context) (*metadata, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.discover(ctx)
}

// key finds a verification key by kid.
func (k *keySet) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[kid]; ok {
		return &key, nil
	}
	if k.keys != nil && k.now().Sub(k.fetchedAt) < k.interval {
		return nil, errUnknownKey
	}
	m, err := k.discover(ctx)
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	// The fetch time is taken before the fetch, and kept on failure too:
	// an unreachable JWKS is retried no more often than a missing kid.
	k.fetchedAt = k.now()
	k.fetches++
	if err := getJSON(ctx, k.hc, m.JWKSURI, &set); err != nil {
		return nil, fmt.Errorf("resource: fetch JWKS: %w", err)
	}
	keys := make(map[string]jose.JSONWebKey, len(set.Keys))
	for _, key := range set.Keys {
		if key.Use != "" && key.Use != "sig" || !key.IsPublic() {
			continue
		}
		keys[key.KeyID] = key
	}
	k.keys = keys
	if key, ok := k.keys[kid]; ok {
		return &key, nil
	}
	return nil, errUnknownKey
}

var errUnknownKey = errors.New("resource: token signed by an unknown key")

const maxDoc = 1 << 20

func getJSON(ctx context.Context, hc *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.Contains(ct, "json") {
		return fmt.Errorf("GET %s: content type %q", u, ct)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDoc)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}
