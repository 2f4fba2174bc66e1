package scaleout_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage/pgtest"
)

// TestTwoInstancesOneDatabase runs two in-process Latch servers with their
// own memory on one PostgreSQL database and bounces one user's flow between
// them, the way a load balancer without sticky sessions would.
//
// Both instances are configured with A's URL as issuer, as every instance
// behind one load balancer is configured with the balancer's URL; each is
// still reached on its own address here. So the resume URL B's API returns
// names the shared issuer and the browser lands on A without any rewriting.
func TestTwoInstancesOneDatabase(t *testing.T) {
	dsn := pgtest.DSN(t)
	a := latchtest.Start(t, latchtest.Options{DSN: dsn})
	b := latchtest.Start(t, latchtest.Options{DSN: dsn, Configure: func(c *config.Config) {
		c.Issuer = a.URL
		c.Keys.ReloadInterval = 20 * time.Millisecond
	}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b.App.RunBackground(ctx)

	c := a.WebClient("client_secret_basic") // registered through A, used everywhere
	browser := latchtest.NewBrowser(t)
	verifier := "two-instance-verifier-" + randomish(t)

	id := a.StartAuthorize(browser, authURL(a.URL, c, verifier)) // starts on A
	resume := b.Approve(id, map[string]any{"user": "user-2"})    // approved through B's API
	if u, _ := url.Parse(resume); u.Host != mustHost(t, a.URL) {
		t.Fatalf("B's resume URL %s is not under the shared issuer %s", resume, a.URL)
	}
	loc := a.Resume(browser, resume) // the browser comes back to A
	if loc.Query().Get("iss") != a.URL || loc.Query().Get("code") == "" {
		t.Fatalf("authorization response %s", loc)
	}

	tok := exchange(t, b.URL, c, flow{verifier: verifier, code: loc.Query().Get("code")}) // code redeemed on B
	if tok.status != 200 {
		t.Fatalf("exchange on B: %s", tok)
	}
	ref := refresh(t, a.URL, c, str(t, tok, "refresh_token")) // refreshed on A
	if ref.status != 200 {
		t.Fatalf("refresh on A: %s", ref)
	}
	if !active(t, b, str(t, ref, "access_token")) {
		t.Fatal("B does not accept the access token A issued")
	}
	if again := refresh(t, b.URL, c, str(t, tok, "refresh_token")); again.status != 400 || again.body["error"] != "invalid_grant" {
		t.Fatalf("replaying on B the refresh token A already rotated: %s", again)
	}
	if active(t, a, str(t, ref, "refresh_token")) {
		t.Fatal("a replay on B did not revoke the family for A")
	}

	// A key rotated through A reaches B's JWKS through B's poller, no restart.
	kid, err := a.App.Keys.Rotate(ctx, "ES256", 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !hasKID(t, b, kid) {
		if time.Now().After(deadline) {
			t.Fatalf("key %s rotated through A never appeared in B's JWKS", kid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hasKID(t *testing.T, env *latchtest.Env, kid string) bool {
	req, _ := http.NewRequest("GET", env.URL+"/.well-known/jwks.json", nil)
	r := do(t, req)
	keys, _ := r.body["keys"].([]any)
	for _, k := range keys {
		if m, ok := k.(map[string]any); ok && m["kid"] == kid {
			return true
		}
	}
	return false
}

func mustHost(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
