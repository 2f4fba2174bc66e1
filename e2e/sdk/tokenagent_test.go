package sdke2e

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/sdk/tokenagent"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func (c *clock) set(t time.Time)         { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// introspect asks Latch (as the host app) whether a token is active.
func introspect(t *testing.T, env *latchtest.Env, tok string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("POST", env.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-API-Key", latchtest.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	if err := jsonDecode(resp.Body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// 100 callers at once when the token falls due: exactly one refresh per
// expiry, every caller gets the new token, and Latch never sees a spent
// refresh token (which would revoke the whole grant).
func TestAgentConcurrentCallers(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: withResources})
	c := apiClient(env, "authorization_code", "refresh_token")
	rp := env.NewRP(c)
	first := rp.Login(t, latchtest.NewBrowser(t), []string{"openid", "profile", "offline_access"}, map[string]any{"user": "ann"})
	clk := &clock{t: time.Now()}
	store := tokenagent.FileStore{Path: filepath.Join(t.TempDir(), "tokens.json")}
	agent, err := tokenagent.New(ctx, tokenagent.Config{TokenURL: env.URL + "/oauth2/token", ClientID: c.ID, ClientSecret: c.Secret,
		Store: store, Now: clk.now},
		&tokenagent.Token{AccessToken: first.AccessToken, TokenType: first.TokenType, RefreshToken: first.RefreshToken, Expiry: first.Expiry})
	if err != nil {
		t.Fatal(err)
	}
	prev := first.AccessToken
	for round := 1; round <= 3; round++ {
		clk.advance(env.Config.Tokens.AccessTokenLifetime)
		var wg sync.WaitGroup
		got := make([]string, 100)
		errs := make([]error, 100)
		for i := range 100 {
			wg.Go(func() {
				tok, err := agent.TokenContext(context.Background())
				if err == nil {
					got[i] = tok.AccessToken
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i := range 100 {
			if errs[i] != nil || got[i] != got[0] {
				t.Fatalf("round %d caller %d: %v (%q vs %q)", round, i, errs[i], got[i], got[0])
			}
		}
		if n := agent.Requests(); n != round {
			t.Fatalf("round %d: %d token requests, want %d", round, n, round)
		}
		if got[0] == prev {
			t.Fatalf("round %d: the token did not change", round)
		}
		if ir := introspect(t, env, got[0]); ir["active"] != true || ir["sub"] != "ann" {
			t.Fatalf("round %d: the new token is not active (a reused refresh token revokes the grant): %v", round, ir)
		}
		prev = got[0]
	}
	stored, _ := store.Load(ctx)
	if stored.AccessToken != prev || stored.RefreshToken == "" {
		t.Fatalf("the store does not hold the latest set: %+v", stored)
	}
}

// When the refresh token is refused (revoked here), an agent configured
// with client credentials recovers with a token of its own.
func TestAgentFallsBackToClientCredentials(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: withResources})
	c := apiClient(env, "authorization_code", "refresh_token", "client_credentials")
	rp := env.NewRP(c)
	first := rp.Login(t, latchtest.NewBrowser(t), []string{"openid", "profile", "offline_access"}, map[string]any{"user": "ann"})
	revoke(t, env, c, first.RefreshToken)
	clk := &clock{t: time.Now()}
	agent, _ := tokenagent.New(ctx, tokenagent.Config{TokenURL: env.URL + "/oauth2/token", ClientID: c.ID, ClientSecret: c.Secret,
		ClientCredentials: true, Scopes: []string{"profile"}, Now: clk.now},
		&tokenagent.Token{AccessToken: first.AccessToken, TokenType: first.TokenType, RefreshToken: first.RefreshToken, Expiry: first.Expiry})
	clk.set(first.Expiry.Add(time.Second))
	tok, err := agent.Token()
	if err != nil {
		t.Fatal(err)
	}
	if agent.Requests() != 2 {
		t.Fatalf("%d token requests, want 2 (a refused refresh, then client credentials)", agent.Requests())
	}
	if ir := introspect(t, env, tok.AccessToken); ir["active"] != true || ir["sub"] != c.ID {
		t.Fatalf("%v", ir)
	}
	// Without the fallback the same failure is an error, and the refused
	// refresh token is not tried again.
	first = rp.Login(t, latchtest.NewBrowser(t), []string{"openid", "profile", "offline_access"}, map[string]any{"user": "ann"})
	revoke(t, env, c, first.RefreshToken)
	clk.set(first.Expiry.Add(time.Second))
	agent, _ = tokenagent.New(ctx, tokenagent.Config{TokenURL: env.URL + "/oauth2/token", ClientID: c.ID, ClientSecret: c.Secret, Now: clk.now},
		&tokenagent.Token{AccessToken: first.AccessToken, RefreshToken: first.RefreshToken, Expiry: first.Expiry})
	if _, err := agent.Token(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("%v", err)
	}
	if _, err := agent.Token(); err != tokenagent.ErrNoToken || agent.Requests() != 1 {
		t.Fatalf("%v after %d requests", err, agent.Requests())
	}
}
