// Package cimd resolves OAuth Client ID Metadata Documents
// (draft-ietf-oauth-client-id-metadata-document, SPEC §6): a client_id
// that is an https URL names a JSON document, fetched through the hardened
// outbound fetcher, that is the client's metadata. Documents are validated
// like registrations, allow only public or private_key_jwt clients, and
// are cached by their HTTP caching headers within operator bounds.
package cimd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/outbound"
	"github.com/latchhq/latch/storage"
)

// MaxDocumentBytes caps a metadata document (SPEC §7).
const MaxDocumentBytes = 5 << 10

// maxEntries bounds the cache; past it the entry closest to expiry goes.
const maxEntries = 4096

// Fetcher is the outbound fetcher.
type Fetcher interface {
	Get(ctx context.Context, rawURL string, limit int64) (*outbound.Response, error)
}

// Validator turns registration metadata into a client, applying the same
// rules as the management API.
type Validator interface {
	Build(m clients.Metadata) (*storage.Client, error)
}

// Options are the operator's policy.
type Options struct {
	// Enabled accepts document client ids at all.
	Enabled bool
	// AllowLoopback also accepts http://127.0.0.1:{port}/ ids (tests).
	AllowLoopback bool
	// Allowed, when non-empty, are the only hosts accepted; Denied are
	// never accepted. "*.example.com" matches every subdomain.
	Allowed, Denied []string
	// MinCache and MaxCache bound a document's lifetime in the cache;
	// NegativeCache is how long a refusal is remembered.
	MinCache, MaxCache, NegativeCache time.Duration
	Now                               func() time.Time
	Log                               *slog.Logger
}

// Error is why a document client id was refused. Its text is safe to show
// the client; it counts as "client not found" everywhere else.
type Error struct{ Reason string }

func (e *Error) Error() string { return "client metadata document refused: " + e.Reason }

// Unwrap makes a refused document an unknown client: storage.IsNotFound
// recognises it, as storage.ExternalClients requires, and fosite still sees
// its own fosite.ErrNotFound beneath storage's word.
func (e *Error) Unwrap() error { return storage.ErrNotFound }

func refuse(format string, args ...any) error { return &Error{Reason: fmt.Sprintf(format, args...)} }

// Resolver resolves and caches document clients. It is safe for
// concurrent use; one per process.
type Resolver struct {
	opt      Options
	fetch    Fetcher
	validate Validator

	mu    sync.Mutex
	cache map[string]entry
}

type entry struct {
	client *storage.Client
	err    error
	until  time.Time
}

var _ storage.ExternalClients = (*Resolver)(nil)

// New builds a resolver.
func New(o Options, f Fetcher, v Validator) *Resolver {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Resolver{opt: o, fetch: f, validate: v, cache: map[string]entry{}}
}

// Handles reports whether id is a document URL this server resolves:
// https (or loopback http when allowed), whatever the host policy says,
// so that a denied host is refused rather than looked up as a row.
func (r *Resolver) Handles(id string) bool {
	if !r.opt.Enabled {
		return false
	}
	return strings.HasPrefix(id, "https://") || r.opt.AllowLoopback && strings.HasPrefix(id, "http://127.0.0.1:")
}

// Client returns the client for a document id, fetching it when the cache
// holds nothing current.
func (r *Resolver) Client(ctx context.Context, id string) (*storage.Client, error) {
	now := r.opt.Now()
	r.mu.Lock()
	e, ok := r.cache[id]
	r.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.client, e.err
	}
	c, ttl, err := r.resolve(ctx, id)
	if err != nil {
		var refused *Error
		if !errors.As(err, &refused) {
			// Only a refusal is the document's fault; anything else
			// (a cancelled request) is not remembered.
			return nil, err
		}
		ttl = r.opt.NegativeCache
		r.opt.Log.Info("client metadata document refused", "client_id", id, "reason", refused.Reason)
	}
	r.put(id, entry{client: c, err: err, until: now.Add(ttl)})
	return c, err
}

func (r *Resolver) put(id string, e entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.cache[id]; !ok && len(r.cache) >= maxEntries {
		var oldest string
		for k, v := range r.cache {
			if oldest == "" || v.until.Before(r.cache[oldest].until) {
				oldest = k
			}
		}
		delete(r.cache, oldest)
	}
	r.cache[id] = e
}

// Forget drops a cached document (tests and operators' tooling).
func (r *Resolver) Forget(id string) {
	r.mu.Lock()
	delete(r.cache, id)
	r.mu.Unlock()
}

// document is the metadata a document may carry. Unknown members are
// ignored, as RFC 7591 asks of servers.
type document struct {
	clients.Metadata
	JWKS         json.RawMessage `json:"jwks"`
	ClientSecret *string         `json:"client_secret"`
}

func (r *Resolver) resolve(ctx context.Context, id string) (*storage.Client, time.Duration, error) {
	if err := r.checkURL(id); err != nil {
		return nil, 0, err
	}
	resp, err := r.fetch.Get(ctx, id, MaxDocumentBytes)
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		var oe *outbound.Error
		if errors.As(err, &oe) {
			return nil, 0, refuse("the document could not be fetched (%v)", oe.Kind)
		}
		return nil, 0, refuse("the document could not be fetched")
	}
	var doc document
	if err := json.Unmarshal(resp.Body, &doc); err != nil {
		return nil, 0, refuse("the document is not a JSON object of client metadata")
	}
	if doc.ClientID != id {
		return nil, 0, refuse("the document's client_id must equal its URL exactly")
	}
	if strings.TrimSpace(doc.ClientName) == "" {
		return nil, 0, refuse("the document has no client_name")
	}
	if len(doc.RedirectURIs) == 0 {
		return nil, 0, refuse("the document has no redirect_uris")
	}
	if doc.ClientSecret != nil {
		return nil, 0, refuse("a client metadata document must not carry a client_secret")
	}
	if doc.TokenEndpointAuthMethod == "" {
		// No shared secret can exist for a document client: missing
		// means public, not RFC 7591's client_secret_basic.
		doc.TokenEndpointAuthMethod = "none"
	}
	if m := doc.TokenEndpointAuthMethod; m != "none" && m != "private_key_jwt" {
		return nil, 0, refuse("token_endpoint_auth_method must be none or private_key_jwt, not %q", m)
	}
	if slices.Contains(doc.GrantTypes, "client_credentials") {
		return nil, 0, refuse("a client metadata document cannot use client_credentials")
	}
	if len(doc.JWKS) > 0 && string(doc.JWKS) != "null" {
		doc.Metadata.JWKS = string(doc.JWKS)
	}
	m := doc.Metadata
	m.ClientID, m.Owner, m.Audience = "", "", nil
	c, err := r.validate.Build(m)
	if err != nil {
		var inv *clients.InvalidError
		if errors.As(err, &inv) {
			return nil, 0, refuse("%s: %s", inv.Field, inv.Msg)
		}
		return nil, 0, refuse("invalid metadata")
	}
	c.ID, c.Document = id, true
	if err := c.PrepareKeys(); err != nil {
		return nil, 0, refuse("jwks is not usable")
	}
	return c, r.lifetime(resp), nil
}

// checkURL applies the draft's URL rules (https, a path, no fragment,
// credentials or dot segments) and the operator's host policy.
func (r *Resolver) checkURL(id string) error {
	u, err := url.Parse(id)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(id, "#") {
		return refuse("the client_id is not a valid document URL")
	}
	if u.Path == "" || u.Path == "/" || slices.ContainsFunc(strings.Split(u.Path, "/"), func(seg string) bool { return seg == "." || seg == ".." }) {
		return refuse("the client_id URL must have a path without dot segments")
	}
	host := strings.ToLower(u.Hostname())
	if slices.ContainsFunc(r.opt.Denied, func(p string) bool { return hostMatches(p, host) }) {
		return refuse("documents from %s are not accepted here", host)
	}
	if len(r.opt.Allowed) > 0 && !slices.ContainsFunc(r.opt.Allowed, func(p string) bool { return hostMatches(p, host) }) {
		return refuse("documents from %s are not accepted here", host)
	}
	return nil
}

func hostMatches(pattern, host string) bool {
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(host, "."+suffix)
	}
	return host == pattern
}

// lifetime reads Cache-Control max-age (no-store and no-cache count as
// zero) or Expires, clamped to the configured bounds.
func (r *Resolver) lifetime(resp *outbound.Response) time.Duration {
	ttl := time.Duration(-1)
	cc := strings.ToLower(resp.Header.Get("Cache-Control"))
	for _, d := range strings.Split(cc, ",") {
		d = strings.TrimSpace(d)
		switch {
		case d == "no-store" || d == "no-cache":
			ttl = 0
		case strings.HasPrefix(d, "max-age="):
			if n, err := strconv.Atoi(strings.TrimPrefix(d, "max-age=")); err == nil && ttl != 0 {
				ttl = time.Duration(n) * time.Second
			}
		}
	}
	if ttl < 0 {
		if exp, err := http.ParseTime(resp.Header.Get("Expires")); err == nil {
			ttl = exp.Sub(resp.FetchedAt)
		}
	}
	return min(max(ttl, r.opt.MinCache), r.opt.MaxCache)
}
