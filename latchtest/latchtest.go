// Package latchtest starts a real Latch — real database, real HTTP server on
// a loopback port — for tests, and plays the other two parties: the browser
// (a cookie jar that stops at every redirect) and the host app (the approval
// API with the admin key). It is imported only by tests.
package latchtest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/app"
	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/endpoint"
	"github.com/latchhq/latch/server"
)

// APIKey is the admin key every test instance accepts.
const APIKey = "latch_test_admin_key_0123456789abcdefghijklmnopqrstuv"

// MasterKey is a fixed 32-byte master key so instances can share a database.
const MasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// ApprovalURL is the (never contacted) host app page in tests: the test
// itself answers for the host app through the API.
const ApprovalURL = "https://host.example/approve"

// Options adjust an instance.
type Options struct {
	// DSN selects the database; empty means a fresh SQLite file.
	DSN string
	// Configure edits the config before start.
	Configure func(*config.Config)
	// DevPage leaves approval_url empty (the built-in consent page).
	DevPage bool
	// Logger receives Latch's logs; nil discards them (or shows warnings
	// under -v).
	Logger *slog.Logger
	// Log, when set, receives every log line at debug level (tests that
	// check what is logged).
	Log io.Writer
	// Now is Latch's clock (sessions, keys, storage expiry); nil is time.Now.
	Now func() time.Time
	// Background runs the app's background loop (key reloads, janitor,
	// back-channel logout deliveries) as serve does, until the test ends.
	Background bool
}

// Env is one running Latch.
type Env struct {
	T      testing.TB
	URL    string
	App    *app.App
	Server *server.Server
	HTTP   *httptest.Server
	Config *config.Config
}

// Start runs an instance until the test ends.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	cfg := config.Default()
	cfg.Issuer = issuer
	cfg.HTTP.Addr = ln.Addr().String()
	cfg.MasterKey = MasterKey
	cfg.API.Key = APIKey
	cfg.Approval.URL = ApprovalURL
	if o.DevPage {
		cfg.Approval.URL = ""
	}
	cfg.Database.DSN = o.DSN
	if cfg.Database.DSN == "" {
		cfg.Database.DSN = "sqlite://" + filepath.Join(t.TempDir(), "latch.db")
	}
	cfg.Log.Level = "error"
	if o.Configure != nil {
		o.Configure(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if o.Log != nil {
		log = slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if o.Logger != nil {
		log = o.Logger
	}
	ctx := context.Background()
	a, err := app.Open(ctx, cfg, log, app.Options{Migrate: true, Now: o.Now})
	if err != nil {
		t.Fatalf("open app: %v", err)
	}
	if err := a.Bootstrap(ctx, io.Discard); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	srv := a.Server()
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	bg, stop := context.WithCancel(ctx)
	wait := func() {}
	if o.Background {
		wait = a.RunBackground(bg)
	}
	t.Cleanup(func() {
		stop()
		hs.Close()
		wait()
		a.Close()
	})
	return &Env{T: t, URL: issuer, App: a, Server: srv, HTTP: hs, Config: cfg}
}

// With returns a copy of e that reports failures to t, for parallel
// subtests sharing one instance.
func (e *Env) With(t testing.TB) *Env {
	c := *e
	c.T = t
	return &c
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Client is a registered client and its one-time secret.
type Client struct {
	ID, Secret   string
	RedirectURIs []string
}

// CreateClient registers a client directly through the app.
func (e *Env) CreateClient(m clients.Metadata) Client {
	e.T.Helper()
	c, sec, err := e.App.Clients().Create(context.Background(), m)
	if err != nil {
		e.T.Fatalf("create client: %v", err)
	}
	return Client{ID: c.ID, Secret: sec, RedirectURIs: c.RedirectURIs}
}

// RegisterClient registers a client the way a host app does, through POST
// /api/clients, so the whole path from JSON to the stored client is used.
func (e *Env) RegisterClient(body map[string]any) Client {
	e.T.Helper()
	status, out := e.API("POST", endpoint.API+endpoint.Clients, body)
	if status != http.StatusCreated {
		e.T.Fatalf("register client: %d %v", status, out)
	}
	c := Client{}
	c.ID, _ = out["client_id"].(string)
	c.Secret, _ = out["client_secret"].(string)
	uris, _ := out["redirect_uris"].([]any)
	for _, u := range uris {
		c.RedirectURIs = append(c.RedirectURIs, u.(string))
	}
	return c
}

// WebClient registers a confidential code-flow client with refresh tokens.
func (e *Env) WebClient(authMethod string) Client {
	return e.CreateClient(clients.Metadata{
		ClientName: "Web app", RedirectURIs: []string{"https://client.example/cb"},
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		TokenEndpointAuthMethod: authMethod,
	})
}

// NativeClient registers a public client with a loopback redirect URI.
func (e *Env) NativeClient() Client {
	return e.CreateClient(clients.Metadata{
		ClientName: "Native app", RedirectURIs: []string{"http://127.0.0.1/callback"},
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		TokenEndpointAuthMethod: "none",
	})
}

// Browser is a user agent with its own cookie jar that never follows
// redirects by itself, so each hop can be inspected.
type Browser struct {
	T    testing.TB
	HTTP *http.Client
}

// NewBrowser makes a browser with an empty cookie jar.
func NewBrowser(t testing.TB) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{T: t, HTTP: &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Get fetches a URL and returns the response (body read and closed).
func (b *Browser) Get(u string) (*http.Response, []byte) {
	b.T.Helper()
	resp, err := b.HTTP.Get(u)
	if err != nil {
		b.T.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// Location is a redirect's target, parsed.
func Location(t testing.TB, resp *http.Response) *url.URL {
	t.Helper()
	loc := resp.Header.Get("Location")
	if loc == "" {
		t.Fatalf("expected a redirect, got %d without Location", resp.StatusCode)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("bad Location %q: %v", loc, err)
	}
	return u
}

// StartAuthorize follows the browser to the host app and returns the auth
// session id from the approval URL.
func (e *Env) StartAuthorize(b *Browser, authURL string) string {
	e.T.Helper()
	resp, body := b.Get(authURL)
	if resp.StatusCode != http.StatusSeeOther {
		e.T.Fatalf("authorize: status %d, body %s", resp.StatusCode, body)
	}
	loc := Location(e.T, resp)
	if !strings.HasPrefix(loc.String(), e.approvalBase()) {
		e.T.Fatalf("authorize redirected to %s, not the approval page", loc)
	}
	return loc.Query().Get("token")
}

func (e *Env) approvalBase() string {
	if e.Config.Approval.URL == "" {
		return e.URL + "/dev/consent"
	}
	return e.Config.Approval.URL
}

// API calls the admin API as the host app; body may be nil.
func (e *Env) API(method, path string, body any) (int, map[string]any) {
	e.T.Helper()
	return e.APIWithKey(APIKey, method, path, body)
}

// APIWithKey calls the admin API with a given key.
func (e *Env) APIWithKey(key, method, path string, body any) (int, map[string]any) {
	e.T.Helper()
	return CallAPI(e.T, e.URL, key, method, path, body)
}

// Approve approves a session as the host app and returns the redirect_uri.
func (e *Env) Approve(id string, body map[string]any) string {
	e.T.Helper()
	status, out := e.API("POST", endpoint.API+endpoint.AuthSession+"/"+id+"/approve", body)
	if status != http.StatusOK {
		e.T.Fatalf("approve: %d %v", status, out)
	}
	return out["redirect_uri"].(string)
}

// Deny denies a session as the host app and returns the redirect_uri.
func (e *Env) Deny(id string) string {
	e.T.Helper()
	status, out := e.API("POST", endpoint.API+endpoint.AuthSession+"/"+id+"/deny", map[string]any{})
	if status != http.StatusOK {
		e.T.Fatalf("deny: %d %v", status, out)
	}
	return out["redirect_uri"].(string)
}

// Resume follows the host app's redirect_uri in the browser and returns the
// final redirect to the client.
func (e *Env) Resume(b *Browser, redirectURI string) *url.URL {
	e.T.Helper()
	resp, body := b.Get(redirectURI)
	if resp.StatusCode != http.StatusSeeOther {
		e.T.Fatalf("resume: status %d, body %s", resp.StatusCode, body)
	}
	return Location(e.T, resp)
}

// Authorize runs a whole browser flow with approval and returns the final
// redirect to the client.
func (e *Env) Authorize(b *Browser, authURL string, approve map[string]any) *url.URL {
	e.T.Helper()
	id := e.StartAuthorize(b, authURL)
	return e.Resume(b, e.Approve(id, approve))
}
