// Package tokenagent keeps one OAuth client's tokens fresh: it refreshes
// ahead of expiry (or on a fixed period, whichever comes first), runs one
// refresh at a time while concurrent callers wait for it, never sends a
// refresh token twice (Latch revokes the whole grant when a spent one comes
// back), falls back to client credentials when configured, signs DPoP
// proofs when given a key, and persists through a small Store.
//
// Agent.Token has the shape of golang.org/x/oauth2's TokenSource (this
// module does not import x/oauth2; adapt with a three-line wrapper), and
// Agent.Transport is an http.RoundTripper that authorises requests.
package tokenagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/latchhq/latch/sdk/dpop"
)

// Token is one token response, with when it was obtained.
type Token struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	// Expiry is zero when the server did not send expires_in.
	Expiry     time.Time `json:"expiry,omitzero"`
	ObtainedAt time.Time `json:"obtained_at,omitzero"`
}

// Type is the Authorization scheme: "DPoP" or "Bearer".
func (t *Token) Type() string {
	if strings.EqualFold(t.TokenType, "dpop") {
		return "DPoP"
	}
	return "Bearer"
}

// AuthStyle says how the client authenticates at the token endpoint.
type AuthStyle int

// Client authentication methods.
const (
	AuthHeader AuthStyle = iota // client_secret_basic (the default)
	AuthBody                    // client_secret_post
)

// Config configures an Agent.
type Config struct {
	// TokenURL is Latch's token endpoint.
	TokenURL string
	// ClientID and ClientSecret authenticate the client (no secret: a
	// public client, which can only refresh).
	ClientID, ClientSecret string
	AuthStyle              AuthStyle
	// Scopes are requested with client credentials.
	Scopes []string
	// Params are added to every token request (e.g. resource=...).
	Params url.Values
	// RefreshBefore refreshes this long before expiry (default 30 s).
	RefreshBefore time.Duration
	// RefreshEvery refreshes a token this old even if it has not expired
	// (0: only expiry counts).
	RefreshEvery time.Duration
	// DefaultLifetime is assumed when a response has no expires_in
	// (default 5 minutes; RefreshEvery, when shorter, still wins).
	DefaultLifetime time.Duration
	// ClientCredentials obtains tokens with the client_credentials grant
	// when there is no refresh token or refreshing fails.
	ClientCredentials bool
	// DPoP, when set, binds tokens to this key and signs a proof for every
	// token request and every request through Transport.
	DPoP *dpop.Key
	// Store persists the token set (nil: memory only).
	Store Store
	// HTTPClient calls the token endpoint (default: 10 s timeout).
	HTTPClient *http.Client
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Errors.
var (
	// ErrNoToken means there is nothing to refresh and no client
	// credentials to fall back on: the user must authorize again.
	ErrNoToken = errors.New("tokenagent: no usable token: authorization needed")
	// ErrRefresh wraps a refused or failed refresh.
	ErrRefresh = errors.New("tokenagent: refresh failed")
)

// Agent holds one client's token set. It is safe for concurrent use.
type Agent struct {
	cfg Config
	now func() time.Time

	mu       sync.Mutex
	tok      *Token
	stale    bool    // Invalidate was called for tok
	inflight *flight // the one refresh running, if any
	nonces   map[string]string
	requests int // token requests sent (tests and metrics)
}

type flight struct {
	done chan struct{}
	tok  *Token
	err  error
}

// New makes an agent. initial (e.g. from a code exchange) wins over what
// the store holds; with neither, the first call obtains a token by client
// credentials or fails with ErrNoToken.
func New(ctx context.Context, cfg Config, initial *Token) (*Agent, error) {
	if u, err := url.Parse(cfg.TokenURL); err != nil || !u.IsAbs() {
		return nil, fmt.Errorf("tokenagent: token URL %q is not absolute", cfg.TokenURL)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("tokenagent: a client id is required")
	}
	if cfg.RefreshBefore == 0 {
		cfg.RefreshBefore = 30 * time.Second
	}
	if cfg.DefaultLifetime == 0 {
		cfg.DefaultLifetime = 5 * time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	a := &Agent{cfg: cfg, now: cfg.Now, nonces: map[string]string{}}
	if a.now == nil {
		a.now = time.Now
	}
	switch {
	case initial != nil:
		t := *initial
		if t.ObtainedAt.IsZero() {
			t.ObtainedAt = a.now()
		}
		a.tok = &t
		if err := a.save(ctx, &t); err != nil {
			return nil, err
		}
	case cfg.Store != nil:
		t, err := cfg.Store.Load(ctx)
		if err != nil {
			return nil, fmt.Errorf("tokenagent: load: %w", err)
		}
		a.tok = t
	}
	return a, nil
}

// Token returns a valid token, refreshing first when one is due. It has the
// signature of oauth2.TokenSource's method.
func (a *Agent) Token() (*Token, error) { return a.TokenContext(context.Background()) }

// TokenContext is Token with a context (which bounds the wait, not a
// refresh other callers share).
func (a *Agent) TokenContext(ctx context.Context) (*Token, error) {
	a.mu.Lock()
	if a.tok != nil && !a.stale && !a.due(a.tok) {
		t := *a.tok
		a.mu.Unlock()
		return &t, nil
	}
	f := a.inflight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		a.inflight = f
		// Take the refresh token out now, under the lock: whatever
		// happens next, nobody can send it again.
		var old *Token
		if a.tok != nil {
			c := *a.tok
			old = &c
			a.tok.RefreshToken = ""
		}
		a.mu.Unlock()
		go a.run(context.WithoutCancel(ctx), f, old)
	} else {
		a.mu.Unlock()
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	t := *f.tok
	return &t, nil
}

// run performs one refresh and publishes its result.
func (a *Agent) run(ctx context.Context, f *flight, old *Token) {
	tok, err := a.obtain(ctx, old)
	a.mu.Lock()
	switch {
	case err == nil:
		a.tok, a.stale = tok, false
	case old != nil && !a.stale && !old.Expiry.IsZero() && a.now().Before(old.Expiry):
		// The refresh failed but the token in hand has not expired:
		// keep serving it (without its spent refresh token).
		t := *old
		t.RefreshToken = ""
		a.tok = &t
		tok, err = &t, nil
	}
	f.tok, f.err = tok, err
	a.inflight = nil
	a.mu.Unlock()
	close(f.done)
}

// due says whether t must be refreshed now.
func (a *Agent) due(t *Token) bool { return !a.now().Before(a.dueAt(t)) }

// dueAt is when t must be refreshed: RefreshBefore ahead of its expiry, or
// RefreshEvery after it was obtained, whichever comes first; a token of
// unknown lifetime lives DefaultLifetime.
func (a *Agent) dueAt(t *Token) time.Time {
	var at time.Time
	if t.Expiry.IsZero() {
		at = t.ObtainedAt.Add(a.cfg.DefaultLifetime)
	} else {
		at = t.Expiry.Add(-a.cfg.RefreshBefore)
	}
	if a.cfg.RefreshEvery > 0 {
		if every := t.ObtainedAt.Add(a.cfg.RefreshEvery); every.Before(at) {
			at = every
		}
	}
	return at
}

// Invalidate marks tok unusable (the API answered 401 invalid_token), so
// the next call refreshes. A token already replaced is left alone, so many
// callers invalidating the same token cause one refresh.
func (a *Agent) Invalidate(tok *Token) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tok != nil && tok != nil && a.tok.AccessToken == tok.AccessToken {
		a.stale = true
	}
}

// Requests is how many token requests the agent has sent.
func (a *Agent) Requests() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests
}

// Run refreshes in the background as tokens fall due, until ctx ends, so
// callers rarely wait. Errors are left for the next caller to see.
func (a *Agent) Run(ctx context.Context) {
	for {
		wait := time.Second
		a.mu.Lock()
		if t := a.tok; t != nil && !a.stale {
			wait = max(a.dueAt(t).Sub(a.now()), time.Second)
		}
		a.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		_, _ = a.TokenContext(ctx)
	}
}

// obtain gets a new token set: refresh when old has a refresh token, else
// (or when that fails) client credentials when configured.
func (a *Agent) obtain(ctx context.Context, old *Token) (*Token, error) {
	var refreshErr error
	if old != nil && old.RefreshToken != "" {
		// Persist the spent state before sending: a crash mid-request must
		// not leave a store that would send this refresh token again.
		spent := *old
		spent.RefreshToken = ""
		if err := a.save(ctx, &spent); err != nil {
			return nil, err
		}
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old.RefreshToken}}
		tok, err := a.request(ctx, form)
		if err == nil {
			if tok.RefreshToken == "" {
				// The server did not rotate (RFC 6749 §6): the old one
				// stays valid, and it was never spent.
				tok.RefreshToken = old.RefreshToken
			}
			if tok.IDToken == "" {
				tok.IDToken = old.IDToken
			}
			return tok, a.save(ctx, tok)
		}
		refreshErr = fmt.Errorf("%w: %w", ErrRefresh, err)
	}
	if !a.cfg.ClientCredentials {
		if refreshErr != nil {
			return nil, refreshErr
		}
		return nil, ErrNoToken
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(a.cfg.Scopes) > 0 {
		form.Set("scope", strings.Join(a.cfg.Scopes, " "))
	}
	tok, err := a.request(ctx, form)
	if err != nil {
		return nil, errors.Join(refreshErr, fmt.Errorf("tokenagent: client credentials: %w", err))
	}
	return tok, a.save(ctx, tok)
}

func (a *Agent) save(ctx context.Context, t *Token) error {
	if a.cfg.Store == nil {
		return nil
	}
	if err := a.cfg.Store.Save(ctx, t); err != nil {
		return fmt.Errorf("tokenagent: save: %w", err)
	}
	return nil
}

// OAuthError is an error answer from the token endpoint.
type OAuthError struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *OAuthError) Error() string {
	return fmt.Sprintf("token endpoint answered %d %s: %s", e.Status, e.Code, e.Description)
}

// request posts one token request (retrying once when the server asks for
// a DPoP nonce: the request was refused unprocessed, so nothing was spent).
func (a *Agent) request(ctx context.Context, form url.Values) (*Token, error) {
	for k, vs := range a.cfg.Params {
		for _, v := range vs {
			form.Add(k, v)
		}
	}
	for attempt := 0; ; attempt++ {
		tok, err := a.post(ctx, form)
		var oe *OAuthError
		if attempt == 0 && errors.As(err, &oe) && oe.Code == "use_dpop_nonce" && a.nonce(a.cfg.TokenURL) != "" {
			continue
		}
		return tok, err
	}
}

func (a *Agent) post(ctx context.Context, form url.Values) (*Token, error) {
	body := url.Values{}
	for k, v := range form {
		body[k] = v
	}
	if a.cfg.AuthStyle == AuthBody || a.cfg.ClientSecret == "" {
		body.Set("client_id", a.cfg.ClientID)
		if a.cfg.ClientSecret != "" {
			body.Set("client_secret", a.cfg.ClientSecret)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.TokenURL, strings.NewReader(body.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if a.cfg.AuthStyle == AuthHeader && a.cfg.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(a.cfg.ClientID), url.QueryEscape(a.cfg.ClientSecret))
	}
	if a.cfg.DPoP != nil {
		p, err := a.cfg.DPoP.Proof(http.MethodPost, a.cfg.TokenURL, "", a.nonce(a.cfg.TokenURL))
		if err != nil {
			return nil, err
		}
		req.Header.Set("DPoP", p)
	}
	a.mu.Lock()
	a.requests++
	a.mu.Unlock()
	sent := a.now()
	resp, err := a.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	a.rememberNonce(a.cfg.TokenURL, resp)
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		e := &OAuthError{Status: resp.StatusCode}
		_ = json.Unmarshal(raw, e)
		return nil, e
	}
	var tr struct {
		AccessToken  string          `json:"access_token"`
		TokenType    string          `json:"token_type"`
		RefreshToken string          `json:"refresh_token"`
		IDToken      string          `json:"id_token"`
		Scope        string          `json:"scope"`
		ExpiresIn    json.RawMessage `json:"expires_in"`
	}
	if err := json.Unmarshal(raw, &tr); err != nil {
		return nil, fmt.Errorf("decode token response: %w", err)
	}
	if tr.AccessToken == "" {
		return nil, errors.New("token response without access_token")
	}
	t := &Token{AccessToken: tr.AccessToken, TokenType: tr.TokenType, RefreshToken: tr.RefreshToken,
		IDToken: tr.IDToken, Scope: tr.Scope, ObtainedAt: sent}
	if n := expiresIn(tr.ExpiresIn); n > 0 {
		// Counted from when the request left, so the agent never thinks a
		// token lives longer than it does.
		t.Expiry = sent.Add(time.Duration(n) * time.Second)
	}
	return t, nil
}

// expiresIn reads expires_in as a number or a numeric string (some servers
// send one); anything else counts as absent.
func expiresIn(raw json.RawMessage) int64 {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 || n > 1<<31 {
		return 0
	}
	return int64(n)
}

func (a *Agent) nonce(u string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nonces[origin(u)]
}

func (a *Agent) rememberNonce(u string, resp *http.Response) {
	if n := resp.Header.Get("DPoP-Nonce"); n != "" {
		a.mu.Lock()
		a.nonces[origin(u)] = n
		a.mu.Unlock()
	}
}

func origin(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Scheme + "://" + p.Host
}
