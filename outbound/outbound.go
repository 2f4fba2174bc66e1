// Package outbound is the one HTTP client Latch uses for URLs that someone
// else supplied: a client's jwks_uri today, client metadata documents and
// back-channel logout endpoints next. Such a URL is an attacker's way into
// the network Latch runs in (SSRF) and into its memory, so every fetch is
// https only, follows no redirect, connects only to public unicast
// addresses (checked on the socket, so DNS rebinding cannot slip past),
// gives up after 5 s, reads at most 64 KiB, and happens at most once per
// URL per minute: in between, callers get the remembered result or error.
// Errors name only the kind of failure, never the response, so they are
// safe to hand to the client that supplied the URL.
package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// DefaultLimit is the largest body Get reads, and what it reads when
	// the caller asks for no particular limit.
	DefaultLimit = 64 << 10
	// Timeout bounds connecting and the whole fetch, body included.
	Timeout = 5 * time.Second
	// MinInterval is how long one fetch's result (or error) answers every
	// Get of the same URL, so an unknown kid or a flood of requests naming
	// a URL cannot turn Latch into a traffic amplifier.
	MinInterval = time.Minute
	// maxEntries bounds the remembered results; past it the oldest go, so
	// only a flood of distinct URLs can shorten the once-a-minute spacing.
	maxEntries = 1024
	// maxHeaderBytes bounds the response headers, which the body limit
	// does not cover.
	maxHeaderBytes = 16 << 10
)

// The kinds of failure. Every error Get returns is an *Error whose Kind is
// one of these, so callers test with errors.Is.
var (
	ErrForbiddenURL     = errors.New("outbound: URL not allowed")
	ErrForbiddenAddress = errors.New("outbound: address not allowed")
	ErrRedirect         = errors.New("outbound: redirect refused")
	ErrStatus           = errors.New("outbound: unexpected response status")
	ErrTooLarge         = errors.New("outbound: response too large")
	ErrTimeout          = errors.New("outbound: timed out")
	ErrUnreachable      = errors.New("outbound: fetch failed")
)

// Error is a failed fetch. Its text is the kind of failure only, without
// the URL, the status, the response or the network detail, so it can reach
// the client that supplied the URL; Status and Cause are for the operator.
type Error struct {
	Kind error
	// Status is the upstream HTTP status for ErrStatus and ErrRedirect.
	Status int
	// Cause is the underlying error (network, TLS, context), never the
	// response body.
	Cause error
}

func (e *Error) Error() string { return e.Kind.Error() }
func (e *Error) Unwrap() error { return e.Kind }

// Response is a successful fetch. Callers share it: treat it as read-only.
type Response struct {
	Body []byte
	// Header holds the caching headers of the response (Cache-Control,
	// Expires, ETag, Last-Modified) and its Content-Type.
	Header http.Header
	// FetchedAt is when the fetch that produced it started.
	FetchedAt time.Time
}

var keptHeaders = []string{"Cache-Control", "Expires", "Etag", "Last-Modified", "Content-Type"}

// Options configure a Fetcher.
type Options struct {
	// AllowLoopback additionally allows loopback addresses and plain http
	// (to loopback only). For tests and local development.
	AllowLoopback bool
	// RootCAs verifies servers; nil is the system pool (SSL_CERT_FILE).
	RootCAs *x509.CertPool
	// Timeout replaces the 5 s bound when shorter (tests).
	Timeout time.Duration
	// Now is the clock of the once-per-minute rule; nil is time.Now.
	Now func() time.Time
	// Log receives one warning per failed fetch; nil discards.
	Log *slog.Logger
}

// Fetcher fetches URLs under the rules above. It is safe for concurrent
// use; share one per process so the once-per-minute rule holds.
type Fetcher struct {
	https         *http.Client
	plain         *http.Client // nil unless loopback is allowed
	allowLoopback bool
	timeout       time.Duration
	now           func() time.Time
	log           *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry
}

// entry is the one fetch of a URL that answers for MinInterval; done is
// closed when resp/err are set.
type entry struct {
	done  chan struct{}
	at    time.Time
	limit int64
	resp  *Response
	err   error
}

// New builds a Fetcher.
func New(o Options) *Fetcher {
	f := &Fetcher{
		allowLoopback: o.AllowLoopback, timeout: Timeout, now: o.Now, log: o.Log,
		entries: map[string]*entry{},
	}
	if o.Timeout > 0 && o.Timeout < Timeout {
		f.timeout = o.Timeout
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	f.https = f.client(o.RootCAs, func(ip netip.Addr) error { return CheckAddress(ip, f.allowLoopback) })
	if o.AllowLoopback {
		f.log.Warn("outbound fetches may reach loopback addresses and plain http (outbound.allow_loopback); never enable this in production")
		f.plain = f.client(o.RootCAs, func(ip netip.Addr) error {
			// Plain http is a development convenience for a local server,
			// never a way to talk cleartext to the world.
			if !ip.Unmap().IsLoopback() {
				return ErrForbiddenAddress
			}
			return nil
		})
	}
	return f
}

// client is an http.Client whose every socket passes check before it
// connects, through no proxy (a proxy would make the checked address the
// proxy's) and following no redirect.
func (f *Fetcher) client(roots *x509.CertPool, check func(netip.Addr) error) *http.Client {
	d := &net.Dialer{
		Timeout:   f.timeout,
		KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return ErrForbiddenAddress
			}
			return check(ap.Addr())
		},
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            d.DialContext,
			TLSClientConfig:        &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    f.timeout,
			ResponseHeaderTimeout:  f.timeout,
			MaxResponseHeaderBytes: maxHeaderBytes,
			DisableCompression:     true, // the limit counts bytes we hold, not a gzip bomb's input
			MaxIdleConns:           16,
			MaxIdleConnsPerHost:    2,
			IdleConnTimeout:        30 * time.Second,
			ForceAttemptHTTP2:      true,
		},
		Timeout:       f.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Get fetches rawURL and returns its body if the answer is 200 and at most
// limit bytes (limit <= 0 or above DefaultLimit means DefaultLimit). Within
// MinInterval of the last fetch of the same URL it returns that fetch's
// result or error without touching the network; concurrent calls share one
// fetch. The fetch itself outlives a caller that gives up, so a caller
// hanging up cannot plant a failure for everyone else.
func (f *Fetcher) Get(ctx context.Context, rawURL string, limit int64) (*Response, error) {
	if limit <= 0 || limit > DefaultLimit {
		limit = DefaultLimit
	}
	u, client, err := f.target(rawURL)
	if err != nil {
		return nil, err
	}
	key := u.String()
	f.mu.Lock()
	e := f.entries[key]
	if e == nil || f.now().Sub(e.at) >= MinInterval && isDone(e) {
		e = &entry{done: make(chan struct{}), at: f.now(), limit: limit}
		f.store(key, e)
		go f.fetch(context.WithoutCancel(ctx), e, u, client)
	}
	f.mu.Unlock()

	select {
	case <-e.done:
	case <-ctx.Done():
		return nil, &Error{Kind: ErrTimeout, Cause: ctx.Err()}
	}
	if e.err != nil {
		return nil, e.err
	}
	if int64(len(e.resp.Body)) > limit {
		return nil, &Error{Kind: ErrTooLarge}
	}
	return e.resp, nil
}

// target parses and vets a URL before any network use.
func (f *Fetcher) target(rawURL string) (*url.URL, *http.Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, &Error{Kind: ErrForbiddenURL, Cause: err}
	}
	if u.User != nil || u.Host == "" || u.Opaque != "" {
		return nil, nil, &Error{Kind: ErrForbiddenURL}
	}
	u.Fragment, u.RawFragment = "", ""
	switch {
	case u.Scheme == "https":
		return u, f.https, nil
	case u.Scheme == "http" && f.plain != nil:
		return u, f.plain, nil
	}
	return nil, nil, &Error{Kind: ErrForbiddenURL}
}

func isDone(e *entry) bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// store remembers e under key, making room first. Called with f.mu held.
func (f *Fetcher) store(key string, e *entry) {
	if len(f.entries) >= maxEntries {
		now := f.now()
		var oldestKey string
		var oldest time.Time
		for k, old := range f.entries {
			if now.Sub(old.at) >= MinInterval && isDone(old) {
				delete(f.entries, k)
				continue
			}
			if oldestKey == "" || old.at.Before(oldest) {
				oldestKey, oldest = k, old.at
			}
		}
		if len(f.entries) >= maxEntries {
			delete(f.entries, oldestKey)
		}
	}
	f.entries[key] = e
}

func (f *Fetcher) fetch(ctx context.Context, e *entry, u *url.URL, client *http.Client) {
	defer close(e.done)
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	e.resp, e.err = f.do(ctx, u, client, e.limit)
	if e.resp != nil {
		e.resp.FetchedAt = e.at
	}
	var oe *Error
	if errors.As(e.err, &oe) {
		f.log.Warn("outbound fetch failed", "url", u.Redacted(), "error", oe.Kind.Error(), "status", oe.Status, "cause", oe.Cause)
	}
}

func (f *Fetcher) do(ctx context.Context, u *url.URL, client *http.Client, limit int64) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &Error{Kind: ErrForbiddenURL, Cause: err}
	}
	req.Header.Set("User-Agent", "Latch")
	resp, err := client.Do(req)
	if err != nil {
		return nil, classify(err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, &Error{Kind: ErrRedirect, Status: resp.StatusCode}
	case resp.StatusCode != http.StatusOK:
		return nil, &Error{Kind: ErrStatus, Status: resp.StatusCode}
	case resp.ContentLength > limit:
		return nil, &Error{Kind: ErrTooLarge, Status: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, classify(err)
	}
	if int64(len(body)) > limit {
		return nil, &Error{Kind: ErrTooLarge, Status: resp.StatusCode}
	}
	h := http.Header{}
	for _, k := range keptHeaders {
		if v := resp.Header.Values(k); len(v) > 0 {
			h[k] = v
		}
	}
	return &Response{Body: body, Header: h}, nil
}

// classify maps a transport error onto a kind, keeping it as the cause.
func classify(err error) *Error {
	var ne net.Error
	switch {
	case errors.Is(err, ErrForbiddenAddress):
		return &Error{Kind: ErrForbiddenAddress, Cause: err}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &Error{Kind: ErrTimeout, Cause: err}
	}
	return &Error{Kind: ErrUnreachable, Cause: err}
}

// PostForm posts form to rawURL under the same rules as Get (https only,
// public addresses checked on the socket, no redirect, the time bound, at
// most DefaultLimit of the answer read) but without the once-per-minute
// sharing: each call is its own request, such as one back-channel logout
// token, whose rate the caller's queue bounds. A 2xx answer is success.
func (f *Fetcher) PostForm(ctx context.Context, rawURL string, form url.Values) error {
	u, client, err := f.target(rawURL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return &Error{Kind: ErrForbiddenURL, Cause: err}
	}
	req.Header.Set("User-Agent", "Latch")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	err = func() error {
		resp, err := client.Do(req)
		if err != nil {
			return classify(err)
		}
		defer resp.Body.Close()
		// Read (a bounded part of) the answer so the connection is reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, DefaultLimit))
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			return &Error{Kind: ErrRedirect, Status: resp.StatusCode}
		case resp.StatusCode < 200 || resp.StatusCode > 299:
			return &Error{Kind: ErrStatus, Status: resp.StatusCode}
		}
		return nil
	}()
	var oe *Error
	if errors.As(err, &oe) {
		f.log.Warn("outbound post failed", "url", u.Redacted(), "error", oe.Kind.Error(), "status", oe.Status, "cause", oe.Cause)
	}
	return err
}
