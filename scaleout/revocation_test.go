package scaleout_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage/pgtest"
)

// TestRevokingSpentRefreshTokenRevokesFamily presents to RFC 7009 a refresh
// token that was already rotated: whoever still holds it may hold its live
// successor too, so the family goes (fosite answered 200 and kept it).
func TestRevokingSpentRefreshTokenRevokesFamily(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(*testing.T) string) {
		env := latchtest.Start(t, latchtest.Options{DSN: dsn(t)})
		c := env.WebClient("client_secret_basic")
		tok := exchange(t, env.URL, c, getCode(t, env, c, openidScope))
		spent := str(t, tok, "refresh_token")
		next := refresh(t, env.URL, c, spent)
		if next.status != http.StatusOK {
			t.Fatalf("refresh: %s", next)
		}
		if r := post(t, env.URL+"/oauth2/revoke", url.Values{"token": {spent}}, c); r.status != http.StatusOK {
			t.Fatalf("revoke a spent refresh token: %s", r)
		}
		if active(t, env, str(t, next, "refresh_token")) || active(t, env, str(t, next, "access_token")) {
			t.Fatal("the successor of a revoked spent refresh token is still active")
		}
		if r := refresh(t, env.URL, c, str(t, next, "refresh_token")); r.status != http.StatusBadRequest {
			t.Fatalf("refresh with the successor after revocation: %s", r)
		}
	})
}

// TestRevocationReportsStorageFailure breaks the token table under a
// running instance: revocation must say 503 temporarily_unavailable (the
// token may still be live, the client must retry), never 200.
func TestRevocationReportsStorageFailure(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(*testing.T) string) {
		env := latchtest.Start(t, latchtest.Options{DSN: dsn(t)})
		c := env.WebClient("client_secret_basic")
		tok := exchange(t, env.URL, c, getCode(t, env, c, openidScope))
		db := env.App.Store.DB()
		if err := db.Exec("ALTER TABLE oauth2_tokens RENAME TO oauth2_tokens_away").Error; err != nil {
			t.Fatal(err)
		}
		r := post(t, env.URL+"/oauth2/revoke", url.Values{"token": {str(t, tok, "refresh_token")}}, c)
		if err := db.Exec("ALTER TABLE oauth2_tokens_away RENAME TO oauth2_tokens").Error; err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusServiceUnavailable || r.body["error"] != "temporarily_unavailable" {
			t.Fatalf("revocation with the token table unreadable: %s, want 503 temporarily_unavailable", r)
		}
		if !active(t, env, str(t, tok, "refresh_token")) {
			t.Fatal("the failed revocation changed something")
		}
		if r := post(t, env.URL+"/oauth2/revoke", url.Values{"token": {str(t, tok, "refresh_token")}}, c); r.status != http.StatusOK {
			t.Fatalf("retry: %s", r)
		}
		if active(t, env, str(t, tok, "refresh_token")) {
			t.Fatal("the retried revocation did not revoke")
		}
	})
}

// TestRevocationAndIntrospectionNeedClientAuthentication: no credentials
// at revocation, or a public client at introspection, is 401
// invalid_client (SPEC §2), with WWW-Authenticate: Basic.
func TestRevocationAndIntrospectionNeedClientAuthentication(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	c := env.WebClient("client_secret_basic")
	tok := exchange(t, env.URL, c, getCode(t, env, c, openidScope))
	at := str(t, tok, "access_token")

	for _, form := range []url.Values{{"token": {at}}, {"token": {at}, "client_id": {""}}} {
		req, _ := http.NewRequest("POST", env.URL+"/oauth2/revoke", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("revocation without client authentication (%v): %d %q, want 401 with WWW-Authenticate: Basic",
				form, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if !active(t, env, at) {
		t.Fatal("an unauthenticated revocation revoked the token")
	}

	native := env.NativeClient()
	r := post(t, env.URL+"/oauth2/introspect", url.Values{"token": {at}, "client_id": {native.ID}}, latchtest.Client{})
	if r.status != http.StatusUnauthorized || r.body["error"] != "invalid_client" {
		t.Errorf("introspection by a public client with only its client_id: %s, want 401 invalid_client", r)
	}
}

// TestRevocationAuditedUnderAuthenticatedClient: the audit row names the
// client that authenticated, not the raw Basic user name (here
// percent-encoded, as RFC 6749 §2.3.1 lets a client send it).
func TestRevocationAuditedUnderAuthenticatedClient(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	c := env.CreateClient(clients.Metadata{ClientID: "audited.client", ClientName: "Audited",
		RedirectURIs: []string{"https://client.example/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"}})
	tok := exchange(t, env.URL, c, getCode(t, env, c, openidScope))
	req, _ := http.NewRequest("POST", env.URL+"/oauth2/revoke",
		strings.NewReader(url.Values{"token": {str(t, tok, "refresh_token")}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("audited%2Eclient", url.QueryEscape(c.Secret))
	if r := do(t, req); r.status != http.StatusOK {
		t.Fatalf("revoke: %s", r)
	}
	status, page := env.API("GET", "/api/audit?event="+audit.TokenRevoked, nil)
	events, _ := page["events"].([]any)
	if status != http.StatusOK || len(events) != 1 {
		t.Fatalf("audit: %d %v", status, page)
	}
	if e := events[0].(map[string]any); e["actor_id"] != c.ID || e["client_id"] != c.ID {
		t.Fatalf("revocation audited as actor %v client %v, want %s", e["actor_id"], e["client_id"], c.ID)
	}
}

// TestRefreshScope: a refresh may narrow the scope (the new access token,
// its introspection and userinfo carry only the narrowed scopes) while the
// new refresh token keeps the grant's; asking for more is invalid_scope
// (RFC 6749 §6, SPEC §2).
func TestRefreshScope(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	c := env.WebClient("client_secret_basic")
	verifier := "scope-verifier-" + randomish(t)
	loc := env.Authorize(latchtest.NewBrowser(t), authURLScope(env.URL, c, verifier, "openid offline_access profile"),
		map[string]any{"user": "user-1", "claims": map[string]any{"name": "Ann"}})
	tok := exchange(t, env.URL, c, flow{verifier: verifier, code: loc.Query().Get("code")})
	if tok.status != http.StatusOK {
		t.Fatalf("exchange: %s", tok)
	}
	rt := str(t, tok, "refresh_token")
	if ui := userinfo(t, env, str(t, tok, "access_token")); ui.status != http.StatusOK || ui.body["name"] != "Ann" {
		t.Fatalf("userinfo with the grant's whole scope: %s, want name", ui)
	}

	wider := post(t, env.URL+"/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {"openid email"}}, c)
	if wider.status != http.StatusBadRequest || wider.body["error"] != "invalid_scope" {
		t.Fatalf("refresh asking for a scope the grant lacks: %s, want invalid_scope", wider)
	}

	narrow := post(t, env.URL+"/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {"openid"}}, c)
	if narrow.status != http.StatusOK || narrow.body["scope"] != "openid" {
		t.Fatalf("narrowing refresh: %s, want scope openid", narrow)
	}
	at := str(t, narrow, "access_token")
	if got := introspection(t, env, at); got.body["scope"] != "openid" {
		t.Errorf("introspection of the narrowed access token: %s", got)
	}
	if ui := userinfo(t, env, at); ui.status != http.StatusOK || ui.body["name"] != nil {
		t.Errorf("userinfo with a token narrowed to openid: %s, want no profile claims", ui)
	}
	if got := introspection(t, env, str(t, narrow, "refresh_token")); got.body["scope"] != "openid offline_access profile" {
		t.Errorf("the new refresh token must keep the grant's scope: %s", got)
	}
	full := refresh(t, env.URL, c, str(t, narrow, "refresh_token"))
	if full.status != http.StatusOK || full.body["scope"] != "openid offline_access profile" {
		t.Fatalf("refresh after a narrowing one: %s, want the grant's whole scope", full)
	}
}

// introspection asks as the admin API.
func introspection(t *testing.T, env *latchtest.Env, token string) result {
	t.Helper()
	req, _ := http.NewRequest("POST", env.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-API-Key", latchtest.APIKey)
	return do(t, req)
}

func userinfo(t *testing.T, env *latchtest.Env, at string) result {
	req, _ := http.NewRequest("GET", env.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	return do(t, req)
}

// TestRevocationDuringOutage: with PostgreSQL unreachable, RFC 7009
// revocation says 503 temporarily_unavailable (nothing was revoked; retry),
// never 200; after it comes back the revocation works.
func TestRevocationDuringOutage(t *testing.T) {
	dsn := pgtest.DSN(t)
	env := latchtest.Start(t, latchtest.Options{DSN: dsn})
	c := env.WebClient("client_secret_basic")
	tok := exchange(t, env.URL, c, getCode(t, env, c, openidScope))
	rt := str(t, tok, "refresh_token")

	restore := cutDatabase(t, dsn)
	revoke := post(t, env.URL+"/oauth2/revoke", url.Values{"token": {rt}}, c)
	restore()

	if revoke.status != http.StatusServiceUnavailable || revoke.body["error"] != "temporarily_unavailable" {
		t.Errorf("RFC 7009 revocation during the outage: %s, want 503 temporarily_unavailable", revoke)
	}
	if !active(t, env, rt) {
		t.Fatal("a revocation that reported failure revoked")
	}
	if status, out := env.API("DELETE", "/api/users/user-1/authorizations/"+c.ID, nil); status != http.StatusNoContent {
		t.Fatalf("DELETE authorization after the outage: %d %v", status, out)
	}
	if active(t, env, rt) {
		t.Fatal("the retried revocation did not revoke")
	}
}
