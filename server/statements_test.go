package server_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage/pgtest"
)

// grantOps runs every operation once against env and reports, after each,
// the SQL it cost. The caller decides what the numbers must be.
type grantOps struct {
	t       testing.TB
	env     *latchtest.Env
	web, cc latchtest.Client
	count   *latchtest.SQLCounter
}

func (g *grantOps) form(path string, form url.Values, id, secret string) map[string]any {
	g.t.Helper()
	req, _ := http.NewRequest("POST", g.env.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		g.t.Fatalf("POST %s: %d %s", path, resp.StatusCode, body)
	}
	out := map[string]any{}
	_ = json.Unmarshal(body, &out)
	return out
}

// login runs the browser flow and the code exchange, recording each step's
// counts in got when it is not nil.
func (g *grantOps) login(got map[string]latchtest.Counts) map[string]any {
	code, verifier := g.code(got)
	tok := g.form("/oauth2/token", g.exchange(code, verifier), g.web.ID, g.web.Secret)
	if got != nil {
		got["code exchange"] = g.count.Take()
	}
	return tok
}

// exchange is the token request that redeems code.
func (g *grantOps) exchange(code, verifier string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {g.web.RedirectURIs[0]}, "code_verifier": {verifier}}
}

// code runs the browser flow up to the code and its PKCE verifier.
func (g *grantOps) code(got map[string]latchtest.Counts) (code, verifier string) {
	t, env := g.t, g.env
	take := func(op string) {
		if got != nil {
			got[op] = g.count.Take()
		}
	}
	verifier = "v-" + strings.Repeat("x", 50)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {g.web.ID}, "redirect_uri": {g.web.RedirectURIs[0]},
		"scope": {"openid offline_access"}, "state": {"state-0123456789"}, "nonce": {"nonce-0123456789"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	b := latchtest.NewBrowser(t)
	id := env.StartAuthorize(b, env.URL+"/oauth2/authorize?"+q.Encode())
	take("authorize")
	resume := env.Approve(id, map[string]any{"user": "alice"})
	take("approve")
	loc := env.Resume(b, resume)
	take("resume")
	return loc.Query().Get("code"), verifier
}

// run performs one whole pass and returns the counts per operation.
func (g *grantOps) run() map[string]latchtest.Counts {
	t, env := g.t, g.env
	got := map[string]latchtest.Counts{}
	g.count.Take()
	tok := g.login(got)
	tok = g.form("/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}},
		g.web.ID, g.web.Secret)
	got["refresh"] = g.count.Take()
	if tok["id_token"] == nil {
		t.Fatal("refresh with openid returned no id_token")
	}
	g.form("/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, g.cc.ID, g.cc.Secret)
	got["client_credentials"] = g.count.Take()
	if out := g.form("/oauth2/introspect", url.Values{"token": {tok["access_token"].(string)}}, g.web.ID, g.web.Secret); out["active"] != true {
		t.Fatalf("introspection: %v", out)
	}
	got["introspection"] = g.count.Take()

	req, _ := http.NewRequest("GET", env.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo: %d", resp.StatusCode)
	}
	got["userinfo"] = g.count.Take()

	// The host app ends alice's one login session (from this pass's login).
	req, _ = http.NewRequest("DELETE", env.URL+"/api/users/alice/sessions", nil)
	req.Header.Set("X-API-Key", latchtest.APIKey)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("end sessions: %d", resp.StatusCode)
	}
	got["end sessions"] = g.count.Take()
	return got
}

// TestStatementBudgets pins how many SQL statements and transactions each
// operation costs once the client cache is warm, on SQLite and PostgreSQL.
// Every statement is a round trip on PostgreSQL; a change that adds one must
// raise the budget here, on purpose and with a reason.
func TestStatementBudgets(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) { testStatementBudgets(t, "") })
	t.Run("Postgres", func(t *testing.T) { testStatementBudgets(t, pgtest.DSN(t)) })
}

func testStatementBudgets(t *testing.T, dsn string) {
	// A TTL far longer than the test, so the counts cannot depend on speed.
	// Likewise for the read of other instances' failed-credential counts
	// (once per limits.failure_sync, on whichever request comes then).
	env := latchtest.Start(t, latchtest.Options{DSN: dsn, Configure: func(c *config.Config) {
		c.Database.ClientCacheTTL = time.Minute
		c.Limits.FailureWindow, c.Limits.FailureSync = 24*time.Hour, 24*time.Hour
	}})
	g := &grantOps{t: t, env: env,
		web: env.CreateClient(clients.Metadata{ClientName: "web", RedirectURIs: []string{"https://client.example/cb"},
			GrantTypes: []string{"authorization_code", "refresh_token"}, Scope: "openid offline_access"}),
		cc: env.CreateClient(clients.Metadata{ClientName: "worker", GrantTypes: []string{"client_credentials"}}),
	}
	g.count = latchtest.CountSQL(env.App.Store.DB())
	g.run() // warm caches, as under load
	got := g.run()

	ccStatements, ccTx := 2, 1
	if dsn != "" {
		ccStatements, ccTx = 1, 0
	}
	budgets := []struct {
		op         string
		statements int
		tx         int
		why        string
	}{
		// Every operation that changes state also writes one audit row
		// (SPEC §4 lists these events); the approval API writes two, the
		// key used and the decision.
		//
		// Client from cache; insert the pending auth session; audit.
		{"authorize", 2, 0, "insert auth session, audit"},
		// API key lookup; read the session (404/410 and requested-scope
		// check); conditional update (exactly-once decision) that returns
		// the decided row; audit key used and session approved.
		{"approve", 5, 0, "api key, read, decide+returning, 2 audit"},
		// Conditional complete returning the session, login session insert,
		// code + PKCE + OIDC rows (fosite stores them one by one, so in one
		// transaction: an outage between them left a live code without its
		// PKCE row, scaleout.TestPostgresStopsMidFlow), the note that the
		// client got a grant under the login session; audit.
		{"resume", 7, 1, "complete+returning, login, code, pkce, oidc, session-grant note (who hears of the session's end) (one tx), audit"},
		// Read the code (fosite's second read is served from memory) and
		// the PKCE row; in one transaction: lock the user's grant, spend the
		// code, insert access and refresh, and the audit row (issue 15: it
		// commits with the tokens, so the grant commits once); after it,
		// read the OIDC session (kept, like PKCE, for the janitor).
		// The grant lock (+1, issue 16) is what lets a revocation of the
		// user's grant see, or prevent, the tokens this exchange commits.
		{"code exchange", 8, 1, "code, pkce, grant lock, spend, access, refresh, audit (one tx), oidc read"},
		// Read the refresh token, then in one transaction: lock the grant,
		// spend it, retire its access token (subquery), insert the new
		// pair and the audit row (issue 15: one commit per grant). The
		// grant lock (+1, issue 16) serialises rotation with revocation, so
		// a revocation never misses the new pair.
		{"refresh", 7, 1, "read, grant lock, spend, retire access, access, refresh, audit (one tx)"},
		// Client from cache; store the access token (revocable,
		// introspectable) and the audit row so they commit together (issue
		// 15: one commit instead of two, the token's and the audit group
		// commit's, and never a token without its event). On PostgreSQL
		// that is one statement (a data-modifying CTE: one round trip, where
		// BEGIN and COMMIT would add two); SQLite, in process, uses a
		// transaction.
		{"client_credentials", ccStatements, ccTx, "insert access + audit together"},
		{"introspection", 1, 0, "read token"},
		{"userinfo", 1, 0, "read token"},
		// API key lookup; in one transaction: delete the user's sessions
		// and the notes of their grants, both returning what they removed
		// (the offline_access grant is not revoked and the client has no
		// back-channel URI, so nothing more); audit key used and the end.
		{"end sessions", 5, 1, "api key, delete sessions+returning, delete grant notes+returning, 2 audit"},
	}
	for _, b := range budgets {
		c := got[b.op]
		if c.Statements != b.statements || c.Tx != b.tx {
			t.Errorf("%s: %d statements in %d transactions, budget %d in %d (%s)\n  %s",
				b.op, c.Statements, c.Tx, b.statements, b.tx, b.why, strings.Join(c.SQL, "\n  "))
		}
	}
}
