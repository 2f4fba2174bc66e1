package provider

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"

	"github.com/latchhq/latch/outbound"
)

// Fetcher fetches a URL a client supplied under SPEC §7's rules
// (*outbound.Fetcher): within a minute of a fetch it answers with that
// fetch's result, which is what bounds key refreshes.
type Fetcher interface {
	Get(ctx context.Context, url string, limit int64) (*outbound.Response, error)
}

const (
	// jwksDefaultTTL is how long a key set without Cache-Control max-age
	// is used before it is fetched again.
	jwksDefaultTTL = 5 * time.Minute
	// jwksMaxTTL caps max-age, so a removed key stops working within it.
	jwksMaxTTL = time.Hour
	// jwksMaxSets bounds the parsed sets kept, one per jwks_uri.
	jwksMaxSets = 1024
)

// jwksFetcher is fosite's JWKSFetcherStrategy over the outbound fetcher.
// fosite asks without forceRefresh first and, when the assertion's kid is
// not in the set, again with it; the second ask goes to the fetcher, whose
// once-per-minute rule makes an unknown kid cost at most one fetch a
// minute however often it is presented. Failures become invalid_client
// without the URL, the upstream status or body: the fetcher logs one
// warning per failed fetch, this adds one per unusable body.
type jwksFetcher struct {
	fetch Fetcher
	now   func() time.Time
	log   *slog.Logger

	mu   sync.Mutex
	sets map[string]*jwksEntry
}

// jwksEntry is the set parsed from one fetch (or why it did not parse), so
// a body is parsed and complained about once, not per request.
type jwksEntry struct {
	fetchedAt time.Time
	expires   time.Time
	set       *jose.JSONWebKeySet
	err       error
}

var _ fosite.JWKSFetcherStrategy = (*jwksFetcher)(nil)

func newJWKSFetcher(f Fetcher, now func() time.Time, log *slog.Logger) *jwksFetcher {
	return &jwksFetcher{fetch: f, now: now, log: log, sets: map[string]*jwksEntry{}}
}

var errJWKSUnusable = fosite.ErrInvalidClient.WithHint("The client's JSON Web Key Set (jwks_uri) could not be fetched or read.")

// Resolve returns the key set published at location.
func (j *jwksFetcher) Resolve(ctx context.Context, location string, forceRefresh bool) (*jose.JSONWebKeySet, error) {
	j.mu.Lock()
	e := j.sets[location]
	j.mu.Unlock()
	if e != nil && e.err == nil && !forceRefresh && j.now().Before(e.expires) {
		return e.set, nil
	}
	resp, err := j.fetch.Get(ctx, location, outbound.DefaultLimit)
	if err != nil {
		return nil, errJWKSUnusable.WithWrap(err)
	}
	if e == nil || !e.fetchedAt.Equal(resp.FetchedAt) {
		e = j.parse(location, resp)
	}
	if e.err != nil {
		return nil, errJWKSUnusable.WithWrap(e.err)
	}
	return e.set, nil
}

func (j *jwksFetcher) parse(location string, resp *outbound.Response) *jwksEntry {
	e := &jwksEntry{fetchedAt: resp.FetchedAt, expires: resp.FetchedAt.Add(cacheTTL(resp.Header))}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(resp.Body, &set); err != nil {
		e.err = err
		j.log.Warn("jwks_uri answered with no usable key set", "url", location, "err", err)
	} else {
		e.set = &set
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.sets) >= jwksMaxSets {
		now := j.now()
		for k, old := range j.sets {
			if now.After(old.expires) {
				delete(j.sets, k)
			}
		}
		if len(j.sets) >= jwksMaxSets {
			clear(j.sets)
		}
	}
	j.sets[location] = e
	return e
}

// cacheTTL reads max-age from Cache-Control, bounded to [1 min, 1 h].
func cacheTTL(h http.Header) time.Duration {
	ttl := jwksDefaultTTL
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		if strings.EqualFold(name, "no-store") || strings.EqualFold(name, "no-cache") {
			ttl = 0
		}
		if strings.EqualFold(name, "max-age") {
			if s, err := strconv.Atoi(val); err == nil {
				ttl = time.Duration(s) * time.Second
			}
		}
	}
	return min(max(ttl, outbound.MinInterval), jwksMaxTTL)
}
