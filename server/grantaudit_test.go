package server_test

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage"
	"github.com/latchhq/latch/storage/pgtest"
)

// Every grant leaves exactly one success event, written in the grant's own
// transaction; a replay one replay event and no success; a grant that
// fails none. Concurrent redemptions of one code, where the losers fail at
// the commit point, neither lose nor duplicate the winner's event.
func TestGrantAuditRows(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) { testGrantAuditRows(t, "") })
	t.Run("Postgres", func(t *testing.T) { testGrantAuditRows(t, pgtest.DSN(t)) })
}

func testGrantAuditRows(t *testing.T, dsn string) {
	env := latchtest.Start(t, latchtest.Options{DSN: dsn})
	g := &grantOps{t: t, env: env,
		web: env.CreateClient(clients.Metadata{ClientName: "web", RedirectURIs: []string{"https://client.example/cb"},
			GrantTypes: []string{"authorization_code", "refresh_token"}, Scope: "openid offline_access"}),
		cc: env.CreateClient(clients.Metadata{ClientName: "worker", GrantTypes: []string{"client_credentials"}}),
	}
	want := map[string]int{}
	check := func(step string) {
		t.Helper()
		for _, ev := range []string{audit.CodeExchanged, audit.CodeReplayed, audit.TokenRefreshed, audit.TokenReplayed, audit.TokenIssued} {
			evs, err := env.App.Store.ListAudit(context.Background(), storage.AuditFilter{Event: ev})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != want[ev] {
				t.Errorf("after %s: %d %s events, want %d", step, len(evs), ev, want[ev])
			}
			for _, e := range evs {
				if scopes, _ := e.Details["scopes"].([]any); ev == audit.CodeExchanged && len(scopes) != 2 {
					t.Errorf("%s event holds scopes %v, want the two the code granted", ev, e.Details["scopes"])
				}
			}
		}
	}
	post := func(form url.Values, id, secret string) int {
		resp, _ := latchtest.PostForm(t, env.URL+"/oauth2/token", form, id, secret)
		return resp.StatusCode
	}

	tok := g.login(nil)
	want[audit.CodeExchanged]++
	check("a code exchange")
	rt := tok["refresh_token"].(string)
	g.form("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, g.web.ID, g.web.Secret)
	want[audit.TokenRefreshed]++
	check("a refresh")
	for range 3 {
		g.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, g.cc.ID, g.cc.Secret)
	}
	want[audit.TokenIssued] += 3
	check("three client_credentials grants")

	if s := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, g.web.ID, g.web.Secret); s != http.StatusBadRequest {
		t.Fatalf("refresh token reuse: %d", s)
	}
	want[audit.TokenReplayed]++
	check("a refresh token reuse")
	if s := post(url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}, g.cc.ID, g.cc.Secret); s != http.StatusBadRequest {
		t.Fatalf("client_credentials with openid: %d", s)
	}
	check("a refused grant")

	code, verifier := g.code(nil)
	const n = 6
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = post(g.exchange(code, verifier), g.web.ID, g.web.Secret)
		}()
	}
	wg.Wait()
	won := 0
	for _, s := range statuses {
		if s == http.StatusOK {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("concurrent redemptions of one code: %v, want exactly one 200", statuses)
	}
	want[audit.CodeExchanged]++
	evs, err := env.App.Store.ListAudit(context.Background(), storage.AuditFilter{Event: audit.CodeReplayed})
	if err != nil {
		t.Fatal(err)
	}
	// A loser the database aborted (serialization) is no replay; every
	// other loser is one.
	if len(evs) < 1 || len(evs) > n-1 {
		t.Errorf("%d code.replayed events for %d losers", len(evs), n-1)
	}
	want[audit.CodeReplayed] = len(evs)
	check("concurrent redemptions of one code")
}
