// Package stack starts the whole example story in one process: Latch (in
// process, SQLite in a directory), the host app (examples/hostapp) as its
// approval page and resource server, and the third-party app
// (examples/thirdparty) registered as a client. examples/demo runs it; the
// examples' tests and the browser test drive it.
package stack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/latchhq/latch/app"
	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/examples/hostapp"
	"github.com/latchhq/latch/examples/thirdparty"
)

// Options choose addresses ("127.0.0.1:0" picks a free port) and where
// Latch keeps its database.
type Options struct {
	LatchAddr, HostAddr, ThirdPartyAddr string
	// DataDir holds latch.db; required.
	DataDir string
	// Configure edits Latch's config before it starts.
	Configure func(*config.Config)
	Log       *slog.Logger
}

// Stack is the running story.
type Stack struct {
	LatchURL, HostURL, ThirdPartyURL string
	// APIKey is Latch's admin key (the host app's credential).
	APIKey string
	// ClientID is the third-party app's registration.
	ClientID string
	Latch    *app.App
	Host     *hostapp.App
	servers  []*http.Server
}

// DemoUsers are the host app's accounts.
var DemoUsers = []hostapp.User{
	{ID: "u-alice", Username: "alice", Name: "Alice Example", Email: "alice@example.com", Password: "wonderland"},
	{ID: "u-bob", Username: "bob", Name: "Bob Builder", Email: "bob@example.com", Password: "builder"},
}

func listen(addr string) (net.Listener, string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	return ln, "http://" + ln.Addr().String(), nil
}

func secret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Start runs everything until Close.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	if o.DataDir == "" {
		return nil, errors.New("stack: DataDir is required")
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s = &Stack{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	lnLatch, latchURL, err := listen(o.LatchAddr)
	if err != nil {
		return nil, err
	}
	lnHost, hostURL, err := listen(o.HostAddr)
	if err != nil {
		lnLatch.Close()
		return nil, err
	}
	lnTP, tpURL, err := listen(o.ThirdPartyAddr)
	if err != nil {
		lnLatch.Close()
		lnHost.Close()
		return nil, err
	}
	s.LatchURL, s.HostURL, s.ThirdPartyURL = latchURL, hostURL, tpURL
	s.APIKey = "latch_" + secret(32)

	// Latch, configured as `latch serve` would be with LATCH_* variables.
	cfg := config.Default()
	cfg.Issuer = latchURL
	cfg.HTTP.Addr = lnLatch.Addr().String()
	cfg.Database.DSN = "sqlite://" + filepath.Join(o.DataDir, "latch.db")
	cfg.MasterKey = base64.StdEncoding.EncodeToString([]byte(secret(24))[:32])
	cfg.API.Key = s.APIKey
	cfg.Approval.URL = hostURL + "/oauth/approve"
	ConfigureResources(cfg, hostapp.Resource(hostURL))
	if o.Configure != nil {
		o.Configure(cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stack: latch config: %w", err)
	}
	a, err := app.Open(ctx, cfg, log, app.Options{Migrate: true})
	if err != nil {
		return nil, fmt.Errorf("stack: open latch: %w", err)
	}
	s.Latch = a
	c, clientSecret, err := a.Clients().Create(ctx, clients.Metadata{
		ClientName: "PhotoPrints", RedirectURIs: []string{tpURL + "/callback"},
		PostLogoutRedirectURIs: []string{tpURL + "/"},
		GrantTypes:             []string{"authorization_code", "refresh_token"},
		Scope:                  "openid profile email offline_access",
		Audience:               []string{hostapp.Resource(hostURL)},
	})
	if err != nil {
		return nil, fmt.Errorf("stack: register the third-party app: %w", err)
	}
	s.ClientID = c.ID
	if err := a.Bootstrap(ctx, io.Discard); err != nil {
		return nil, fmt.Errorf("stack: bootstrap: %w", err)
	}
	s.serve(lnLatch, a.Server().Handler())

	host, err := hostapp.New(hostapp.Config{PublicURL: hostURL, Name: "ExampleApp", LatchIssuer: latchURL, LatchAPIKey: s.APIKey, Users: DemoUsers, Log: log})
	if err != nil {
		return nil, err
	}
	s.Host = host
	s.serve(lnHost, host)

	tp, err := thirdparty.New(ctx, thirdparty.Config{PublicURL: tpURL, Issuer: latchURL, ClientID: c.ID, ClientSecret: clientSecret,
		Provider: "ExampleApp", API: hostapp.Resource(hostURL), Log: log})
	if err != nil {
		return nil, err
	}
	s.serve(lnTP, tp)
	return s, nil
}

func (s *Stack) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go func() { _ = srv.Serve(ln) }()
}

// Close stops the servers and Latch.
func (s *Stack) Close() {
	for _, srv := range s.servers {
		_ = srv.Close()
	}
	if s.Latch != nil {
		_ = s.Latch.Close()
	}
}
