// Package approval is the host app's side of Latch's approval step (SPEC §3)
// and of the user-facing management calls (§4): read an auth session, approve
// or deny it, list and revoke a user's authorizations, end a user's Latch
// sessions. Flow turns the ?token= Latch sends the browser with into a
// Session and a decision into the redirect back to Latch.
//
// Every call takes a context and answers errors that errors.Is recognises:
// ErrUnauthorized (401, wrong API key), ErrNotFound (404), ErrConflict (409,
// already decided), ErrExpired (410) and ErrBadRequest (400).
package approval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls Latch's admin API with one API key.
type Client struct {
	issuer string
	apiKey string
	hc     *http.Client
}

// Config configures a Client.
type Config struct {
	// Issuer is Latch's base URL (LATCH_ISSUER), without a trailing slash.
	Issuer string
	// APIKey is an admin API key; keep it on the server.
	APIKey string
	// HTTPClient defaults to a client with a 10 s timeout.
	HTTPClient *http.Client
}

// New makes a client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("approval: issuer %q is not an absolute URL", cfg.Issuer)
	}
	if cfg.APIKey == "" {
		return nil, errors.New("approval: an API key is required")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Client{issuer: strings.TrimRight(cfg.Issuer, "/"), apiKey: cfg.APIKey, hc: hc}, nil
}

// ClientInfo is what a consent screen shows about the app asking.
type ClientInfo struct {
	ClientID   string `json:"client_id"`
	ClientName string `json:"client_name"`
	LogoURI    string `json:"logo_uri"`
	ClientURI  string `json:"client_uri"`
	PolicyURI  string `json:"policy_uri"`
	TOSURI     string `json:"tos_uri"`
	// ClientIDDocument marks a client identified by a metadata document
	// (its client_id is an https URL nobody registered with you).
	ClientIDDocument bool `json:"client_id_document"`
}

// Scope is a requested scope with the description to show.
type Scope struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Session is a pending authorization request: everything a consent screen
// must show.
type Session struct {
	ID        string     `json:"id"`
	Client    ClientInfo `json:"client"`
	Scopes    []Scope    `json:"scopes"`
	Prompt    string     `json:"prompt"`
	LoginHint string     `json:"login_hint"`
	ACRValues string     `json:"acr_values"`
	// MaxAge, when set, means Approval.AuthTime must be at most this many
	// seconds old.
	MaxAge    *int64    `json:"max_age"`
	State     string    `json:"state"`
	ExpiresAt time.Time `json:"expires_at"`
	// RedirectURI is where the client gets the answer; RedirectHost its
	// host name (show it: it tells the user where they are going).
	RedirectURI      string   `json:"redirect_uri"`
	RedirectHost     string   `json:"redirect_host"`
	RedirectLoopback bool     `json:"redirect_loopback"`
	Resources        []string `json:"resources"`
	// User is set when this browser already has a Latch login session;
	// GrantedScopes are the scopes that user already granted this client.
	User          string   `json:"user"`
	GrantedScopes []string `json:"granted_scopes"`
}

// ScopeNames are the requested scopes' names.
func (s *Session) ScopeNames() []string {
	out := make([]string, len(s.Scopes))
	for i, sc := range s.Scopes {
		out[i] = sc.Name
	}
	return out
}

// Approval is the host app's yes.
type Approval struct {
	// User is the subject: a stable id of the user in the host app.
	User string
	// Scopes narrows what is granted; nil grants everything requested.
	Scopes []string
	// Claims feed userinfo and the ID token, filtered by granted scopes.
	Claims map[string]any
	// AccessTokenClaims are added to JWT access tokens and introspection.
	AccessTokenClaims map[string]any
	// IDTokenClaims are added to the ID token and userinfo whatever the
	// scopes.
	IDTokenClaims map[string]any
	// Remember stores the grant so prompt=none works next time.
	Remember bool
	// AuthTime is when the user last authenticated; zero means now
	// (required, and judged against it, when the session has MaxAge).
	AuthTime time.Time
	// ACR is the authentication context class reached.
	ACR string
}

func (a Approval) body() map[string]any {
	b := map[string]any{"user": a.User}
	if a.Scopes != nil {
		b["scopes"] = a.Scopes
	}
	if a.Claims != nil {
		b["claims"] = a.Claims
	}
	if a.AccessTokenClaims != nil {
		b["access_token_claims"] = a.AccessTokenClaims
	}
	if a.IDTokenClaims != nil {
		b["id_token_claims"] = a.IDTokenClaims
	}
	if a.Remember {
		b["remember"] = true
	}
	if !a.AuthTime.IsZero() {
		b["auth_time"] = a.AuthTime.Unix()
	}
	if a.ACR != "" {
		b["acr"] = a.ACR
	}
	return b
}

// Session reads a pending auth session (the ?token= of the approval URL).
func (c *Client) Session(ctx context.Context, id string) (*Session, error) {
	if id == "" {
		return nil, &Error{Status: http.StatusNotFound, Code: "not_found", Description: "no auth session id"}
	}
	var s Session
	if err := c.do(ctx, http.MethodGet, "/api/auth_session/"+url.PathEscape(id), nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Approve approves a session and returns the URL to send the browser to.
// Treat it as opaque: it carries a one-time verifier and only works in the
// browser that started the flow.
func (c *Client) Approve(ctx context.Context, id string, a Approval) (string, error) {
	if a.User == "" {
		return "", errors.New("approval: approve needs a user")
	}
	var out struct {
		RedirectURI string `json:"redirect_uri"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/auth_session/"+url.PathEscape(id)+"/approve", a.body(), &out); err != nil {
		return "", err
	}
	return c.checkRedirect(out.RedirectURI)
}

// Deny refuses a session; description (may be empty) reaches the client
// verbatim as error_description. It returns the URL to send the browser to.
func (c *Client) Deny(ctx context.Context, id, description string) (string, error) {
	body := map[string]any{}
	if description != "" {
		body["error_description"] = description
	}
	var out struct {
		RedirectURI string `json:"redirect_uri"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/auth_session/"+url.PathEscape(id)+"/deny", body, &out); err != nil {
		return "", err
	}
	return c.checkRedirect(out.RedirectURI)
}

// checkRedirect refuses a redirect that does not point back at Latch: the
// SDK never sends a browser anywhere else on Latch's say-so.
func (c *Client) checkRedirect(u string) (string, error) {
	if u != c.issuer && !strings.HasPrefix(u, c.issuer+"/") && !strings.HasPrefix(u, c.issuer+"?") {
		return "", fmt.Errorf("approval: redirect_uri %q is not under the issuer", u)
	}
	return u, nil
}

// Authorization is one app a user has granted something to.
type Authorization struct {
	User       string    `json:"user"`
	ClientID   string    `json:"client_id"`
	Scopes     []string  `json:"scopes"`
	Remembered bool      `json:"remembered"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// Extra holds fields this SDK version does not know (e.g. first and
	// last use), as Latch sent them.
	Extra map[string]json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps unknown fields in Extra.
func (a *Authorization) UnmarshalJSON(b []byte) error {
	type plain Authorization
	if err := json.Unmarshal(b, (*plain)(a)); err != nil {
		return err
	}
	all := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for _, k := range []string{"user", "client_id", "scopes", "remembered", "created_at", "updated_at"} {
		delete(all, k)
	}
	if len(all) > 0 {
		a.Extra = all
	}
	return nil
}

// Authorizations lists every app the user has granted (a "connected apps"
// page).
func (c *Client) Authorizations(ctx context.Context, user string) ([]Authorization, error) {
	var out struct {
		Authorizations []Authorization `json:"authorizations"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/users/"+url.PathEscape(user)+"/authorizations", nil, &out); err != nil {
		return nil, err
	}
	return out.Authorizations, nil
}

// RevokeAuthorization withdraws what user granted clientID and revokes the
// tokens it holds for them.
func (c *Client) RevokeAuthorization(ctx context.Context, user, clientID string) error {
	return c.do(ctx, http.MethodDelete, "/api/users/"+url.PathEscape(user)+"/authorizations/"+url.PathEscape(clientID), nil, nil)
}

// RevokeAllAuthorizations withdraws everything the user granted.
func (c *Client) RevokeAllAuthorizations(ctx context.Context, user string) error {
	return c.do(ctx, http.MethodDelete, "/api/users/"+url.PathEscape(user)+"/authorizations", nil, nil)
}

// EndSessions ends every Latch login session of the user (call it when the
// user logs out of the host app or is disabled), so the next sign-in comes
// back to the host app instead of completing silently.
func (c *Client) EndSessions(ctx context.Context, user string) error {
	return c.do(ctx, http.MethodDelete, "/api/users/"+url.PathEscape(user)+"/sessions", nil, nil)
}

// App reads a registered client's public metadata (name and logo for a
// connected-apps page).
func (c *Client) App(ctx context.Context, clientID string) (*ClientInfo, error) {
	var ci ClientInfo
	if err := c.do(ctx, http.MethodGet, "/api/clients/"+url.PathEscape(clientID), nil, &ci); err != nil {
		return nil, err
	}
	return &ci, nil
}

// maxBody bounds what the SDK reads from Latch.
const maxBody = 1 << 20

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("approval: encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.issuer+path, body)
	if err != nil {
		return fmt.Errorf("approval: %s %s: %w", method, path, err)
	}
	req.Header.Set("X-API-Key", c.apiKey)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("approval: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("approval: %s %s: read: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode}
		_ = json.Unmarshal(raw, e)
		return e
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("approval: %s %s: decode: %w", method, path, err)
	}
	return nil
}

// Sentinels for errors.Is.
var (
	ErrBadRequest   = errors.New("approval: bad request")
	ErrUnauthorized = errors.New("approval: unauthorized (API key)")
	ErrNotFound     = errors.New("approval: not found")
	ErrConflict     = errors.New("approval: already decided")
	ErrExpired      = errors.New("approval: expired")
)

// Error is a non-2xx answer from Latch.
type Error struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("approval: latch answered %d", e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// Is maps the status to the sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrExpired:
		return e.Status == http.StatusGone
	}
	return false
}
