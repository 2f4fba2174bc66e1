package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage/pgtest"
)

// codeIn reports whether a response hands out an authorization code.
func codeIn(resp *http.Response) bool {
	loc, err := url.Parse(resp.Header.Get("Location"))
	return err == nil && loc.Query().Get("code") != ""
}

// count counts rows of a table in the instance's database.
func count(t *testing.T, env *latchtest.Env, table string) int64 {
	t.Helper()
	var n int64
	if err := env.App.Store.DB().Table(table).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAttackerStartedFlowVictimApproved is the Dex CVE-2022-39222 class:
// an attacker starts a sign-in, gets a logged-in victim to open the
// approval link, the host app approves for the victim and sends the
// victim's browser to the returned redirect_uri. The attacker's browser
// holds the binding cookie and knows the session id, but not the verifier
// that exists only in that redirect_uri, so neither browser gets a code.
func TestAttackerStartedFlowVictimApproved(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	r := newRP(t, env, env.WebClient("client_secret_basic"), oauth2.AuthStyleInHeader, "openid")
	authURL := r.conf.AuthCodeURL("attack-state-123", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))

	attacker, victim := latchtest.NewBrowser(t), latchtest.NewBrowser(t)
	id := env.StartAuthorize(attacker, authURL)
	redirect := env.Approve(id, map[string]any{"user": "victim"})

	u := mustURL(redirect)
	if v := u.Query().Get("verifier"); len(v) < 22 || u.Query().Get("session") != id {
		t.Fatalf("redirect_uri %s: want the session and a verifier of at least 128 bits", redirect)
	}
	// The victim's browser follows it but never started this flow.
	if resp, _ := victim.Get(redirect); resp.StatusCode != http.StatusBadRequest || codeIn(resp) {
		t.Fatalf("victim's browser: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The attacker knows the session id only.
	for _, tail := range []string{"", "&verifier=", "&verifier=" + strings.Repeat("A", 43), "&verifier=" + u.Query().Get("session")} {
		resp, _ := attacker.Get(env.URL + "/oauth2/authorize/resume?session=" + url.QueryEscape(id) + tail)
		if codeIn(resp) || resp.StatusCode < 400 {
			t.Fatalf("attacker's resume%s: %d %s", tail, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if n := count(t, env, "oauth2_tokens"); n != 0 {
		t.Fatalf("%d codes or tokens issued during the attack", n)
	}

	// The normal path: the browser that started the flow follows the link.
	b := latchtest.NewBrowser(t)
	id = env.StartAuthorize(b, authURL)
	if loc := env.Resume(b, env.Approve(id, map[string]any{"user": "alice"})); loc.Query().Get("code") == "" {
		t.Fatalf("normal path: %s", loc)
	}
}

// TestInterleavedFlowsInOneBrowser: a second authorization request from the
// same browser, arriving as a cross-site POST (SameSite=Lax cookies are not
// sent with it, but its Set-Cookie is kept), must not break the first
// sign-in in progress: both complete.
func TestInterleavedFlowsInOneBrowser(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	r := newRP(t, env, env.WebClient("client_secret_basic"), oauth2.AuthStyleInHeader, "openid")
	b := latchtest.NewBrowser(t)
	first := env.StartAuthorize(b, r.conf.AuthCodeURL("first-state-1234", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))

	// The cross-site POST: no cookies go out, the answer's cookies are kept.
	second := mustURL(r.conf.AuthCodeURL("second-state-123", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	req, _ := http.NewRequest("POST", env.URL+"/oauth2/authorize", strings.NewReader(second.RawQuery))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	bare := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := bare.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("cross-site POST: %d", resp.StatusCode)
	}
	b.HTTP.Jar.SetCookies(mustURL(env.URL), resp.Cookies())
	secondID := latchtest.Location(t, resp).Query().Get("token")

	for _, f := range []struct{ id, state string }{{secondID, "second-state-123"}, {first, "first-state-1234"}} {
		loc := env.Resume(b, env.Approve(f.id, map[string]any{"user": "alice"}))
		if loc.Query().Get("code") == "" || loc.Query().Get("state") != f.state {
			t.Fatalf("flow %s: %s", f.state, loc)
		}
	}
}

// TestRequestObjectsRefusedBeforeParsing: `request` (here an alg:none
// object trying to pose as a pushed request for a client that requires
// PAR) and a request_uri Latch did not issue are refused from the raw
// request, as a 400 shown to the browser, never a redirect, and nothing is
// stored.
func TestRequestObjectsRefusedBeforeParsing(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	victim := env.WebClient("client_secret_basic")
	strict := env.CreateClient(clients.Metadata{
		ClientName: "Strict", RedirectURIs: []string{"https://strict.example/cb"},
		GrantTypes: []string{"authorization_code"}, RequirePushedAuthRequests: true,
	})
	verifier := oauth2.GenerateVerifier()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	claims := authParams(victim.ID, victim.RedirectURIs[0], verifier)
	obj := map[string]any{"request_uri": "urn:ietf:params:oauth:request_uri:forged"}
	for k := range claims {
		obj[k] = claims.Get(k)
	}
	none := enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." + enc(obj) + "."

	cases := []struct {
		name   string
		params url.Values
		code   string
	}{
		{"alg none request object", url.Values{"client_id": {strict.ID}, "request": {none}, "response_type": {"code"},
			"redirect_uri": {strict.RedirectURIs[0]}, "scope": {"openid"}}, "request_not_supported"},
		{"request object beside a full request", func() url.Values {
			p := authParams(victim.ID, victim.RedirectURIs[0], verifier)
			p.Set("request", none)
			return p
		}(), "request_not_supported"},
		{"foreign request_uri", func() url.Values {
			p := authParams(victim.ID, victim.RedirectURIs[0], verifier)
			p.Set("request_uri", "https://attacker.example/req.jwt")
			return p
		}(), "invalid_request_uri"},
		{"unknown pushed request_uri", url.Values{"client_id": {victim.ID}, "request_uri": {"urn:ietf:params:oauth:request_uri:nope"}}, "invalid_request_uri"},
	}
	for _, tc := range cases {
		for _, method := range []string{"GET", "POST"} {
			var resp *http.Response
			var body map[string]any
			if method == "GET" {
				resp, body = send(t, "GET", env.URL+"/oauth2/authorize?"+tc.params.Encode(), nil, nil)
			} else {
				resp, body = send(t, "POST", env.URL+"/oauth2/authorize", tc.params, nil)
			}
			if resp.StatusCode != http.StatusBadRequest || body["error"] != tc.code || resp.Header.Get("Location") != "" {
				t.Errorf("%s (%s): %d %v %s, want 400 %s and no redirect", tc.name, method, resp.StatusCode, body, resp.Header.Get("Location"), tc.code)
			}
		}
	}
	resp, body := send(t, "POST", env.URL+"/oauth2/par", func() url.Values {
		p := authParams(victim.ID, victim.RedirectURIs[0], verifier)
		p.Set("request", none)
		return p
	}(), basicAuth(victim.ID, victim.Secret))
	wantOAuthError(t, "request object at PAR", resp, body, 400, "request_not_supported")
	if n := count(t, env, "auth_sessions") + count(t, env, "par_requests"); n != 0 {
		t.Fatalf("%d rows stored for refused requests", n)
	}
}

// push sends a pushed authorization request and returns its request_uri.
func push(t *testing.T, env *latchtest.Env, c latchtest.Client, params url.Values) string {
	t.Helper()
	resp, body := send(t, "POST", env.URL+"/oauth2/par", params, basicAuth(c.ID, c.Secret))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push: %d %v", resp.StatusCode, body)
	}
	return body["request_uri"].(string)
}

// TestPushedRequestOnlyByItsClientAndOnlyItsParameters: a request_uri sent
// with another client's id is refused without spending it, so its own
// client still redeems it; when redeemed, front-channel parameters other
// than client_id (prompt, nonce, ...) are ignored.
func TestPushedRequestOnlyByItsClientAndOnlyItsParameters(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	owner, other := env.WebClient("client_secret_basic"), env.WebClient("client_secret_basic")
	r := newRP(t, env, owner, oauth2.AuthStyleInHeader, "openid")
	verifier := oauth2.GenerateVerifier()
	params := authParams(owner.ID, owner.RedirectURIs[0], verifier)
	uri := push(t, env, owner, params)

	b := latchtest.NewBrowser(t)
	resp, body := b.Get(env.URL + "/oauth2/authorize?" + url.Values{"client_id": {other.ID}, "request_uri": {uri}}.Encode())
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "invalid_request_uri") {
		t.Fatalf("another client's id: %d %s", resp.StatusCode, body)
	}

	// The owner redeems it, with front-channel parameters that must not
	// count: prompt=none would answer login_required at once, and the
	// nonce would end up in the ID token.
	front := url.Values{"client_id": {owner.ID}, "request_uri": {uri}, "prompt": {"none"}, "nonce": {"injected"},
		"scope": {"openid offline_access"}, "state": {"injected-state"}}
	id := env.StartAuthorize(b, env.URL+"/oauth2/authorize?"+front.Encode())
	if status, view := env.API("GET", "/api/auth_session/"+id, nil); status != 200 || view["prompt"] != "" {
		t.Fatalf("session view: %d %v", status, view)
	}
	loc := env.Resume(b, env.Approve(id, map[string]any{"user": "alice"}))
	if loc.Query().Get("state") != params.Get("state") {
		t.Fatalf("state %q, want the pushed one", loc.Query().Get("state"))
	}
	tok, err := r.conf.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := r.provider.Verifier(&oidc.Config{ClientID: owner.ID}).Verify(context.Background(), tok.Extra("id_token").(string))
	if err != nil || idt.Nonce != params.Get("nonce") || tok.RefreshToken != "" {
		t.Fatalf("id token nonce %q (err %v), refresh %q: want the pushed nonce and scope only", idt.Nonce, err, tok.RefreshToken)
	}
}

// TestAuthorizationParameterLimits: more than 16 KiB of authorization
// parameters is refused with 400 and stores nothing; below it, only the
// parameters Latch uses are stored.
func TestAuthorizationParameterLimits(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	c := env.WebClient("client_secret_basic")
	verifier := oauth2.GenerateVerifier()
	big := authParams(c.ID, c.RedirectURIs[0], verifier)
	big.Set("junk", strings.Repeat("j", 17<<10))

	resp, body := send(t, "GET", env.URL+"/oauth2/authorize?"+big.Encode(), nil, nil)
	wantOAuthError(t, "17 KiB at authorize", resp, body, 400, "invalid_request")
	resp, body = send(t, "POST", env.URL+"/oauth2/authorize", big, nil)
	wantOAuthError(t, "17 KiB POSTed at authorize", resp, body, 400, "invalid_request")
	resp, body = send(t, "POST", env.URL+"/oauth2/par", big, basicAuth(c.ID, c.Secret))
	wantOAuthError(t, "17 KiB at PAR", resp, body, 400, "invalid_request")
	if n := count(t, env, "auth_sessions") + count(t, env, "par_requests"); n != 0 {
		t.Fatalf("%d rows stored for refused requests", n)
	}

	// 15 KiB passes, but unknown parameters are not stored.
	ok := authParams(c.ID, c.RedirectURIs[0], verifier)
	ok.Set("junk", strings.Repeat("j", 15<<10))
	env.StartAuthorize(latchtest.NewBrowser(t), env.URL+"/oauth2/authorize?"+ok.Encode())
	push(t, env, c, ok)
	var forms []string
	if err := env.App.Store.DB().Raw("SELECT request_form FROM auth_sessions UNION ALL SELECT form FROM par_requests").Scan(&forms).Error; err != nil {
		t.Fatal(err)
	}
	if len(forms) != 2 {
		t.Fatalf("%d stored requests, want 2", len(forms))
	}
	for _, f := range forms {
		if strings.Contains(f, "junk") || len(f) > 1024 || !strings.Contains(f, "code_challenge=") {
			t.Fatalf("stored form of %d bytes: %.200s", len(f), f)
		}
	}
}

// TestSmallAuthorizeAnswers: an unknown or deleted client is a 400 shown to
// the browser (there is nobody to authenticate, and no redirect is safe);
// the host app's deny description reaches the client verbatim; a response
// granting no scope has no empty scope parameter.
func TestSmallAuthorizeAnswers(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	c := env.WebClient("client_secret_basic")
	gone := env.WebClient("client_secret_basic")
	if status, out := env.API("DELETE", "/api/clients/"+gone.ID, nil); status != http.StatusNoContent {
		t.Fatalf("delete client: %d %v", status, out)
	}
	verifier := oauth2.GenerateVerifier()
	for _, id := range []string{"no-such-client", gone.ID} {
		p := authParams(id, c.RedirectURIs[0], verifier)
		resp, body := send(t, "GET", env.URL+"/oauth2/authorize?"+p.Encode(), nil, nil)
		if resp.StatusCode != http.StatusBadRequest || body["error"] != "invalid_client" || resp.Header.Get("Location") != "" {
			t.Errorf("client %s: %d %v %s", id, resp.StatusCode, body, resp.Header.Get("Location"))
		}
	}

	authURL := env.URL + "/oauth2/authorize?" + authParams(c.ID, c.RedirectURIs[0], verifier).Encode()
	b := latchtest.NewBrowser(t)
	id := env.StartAuthorize(b, authURL)
	desc := `You said "no" & that's final.`
	status, out := env.API("POST", "/api/auth_session/"+id+"/deny", map[string]any{"error_description": desc})
	if status != http.StatusOK {
		t.Fatalf("deny: %d %v", status, out)
	}
	loc := env.Resume(b, out["redirect_uri"].(string))
	if loc.Query().Get("error") != "access_denied" || loc.Query().Get("error_description") != desc {
		t.Fatalf("deny description %q, want %q", loc.Query().Get("error_description"), desc)
	}

	id = env.StartAuthorize(b, authURL)
	loc = env.Resume(b, env.Approve(id, map[string]any{"user": "alice", "scopes": []string{}}))
	if _, ok := loc.Query()["scope"]; ok || loc.Query().Get("code") == "" {
		t.Fatalf("response granting nothing: %s", loc)
	}
}

// TestMalformedSessionIDs: NUL bytes and invalid UTF-8 in session ids and
// authorization parameters are refused before the database, which on
// PostgreSQL fails on them (500) instead of finding nothing.
func TestMalformedSessionIDs(t *testing.T) {
	for name, dsn := range map[string]func(testing.TB) string{
		"SQLite":   func(testing.TB) string { return "" },
		"Postgres": pgtest.DSN,
	} {
		t.Run(name, func(t *testing.T) {
			env := latchtest.Start(t, latchtest.Options{DSN: dsn(t)})
			c := env.WebClient("client_secret_basic")
			for _, bad := range []string{"%00", "a%00b", "%FF%FE", "%C0%80"} {
				for _, call := range []struct {
					method, path string
					body         any
				}{
					{"GET", "/api/auth_session/" + bad, nil},
					{"POST", "/api/auth_session/" + bad + "/approve", map[string]any{"user": "u"}},
					{"POST", "/api/auth_session/" + bad + "/deny", map[string]any{}},
				} {
					if status, out := env.API(call.method, call.path, call.body); status != http.StatusNotFound {
						t.Errorf("%s %s: %d %v", call.method, call.path, status, out)
					}
				}
				b := latchtest.NewBrowser(t)
				env.StartAuthorize(b, env.URL+"/oauth2/authorize?"+authParams(c.ID, c.RedirectURIs[0], "v").Encode())
				resp, _ := b.Get(env.URL + "/oauth2/authorize/resume?session=" + bad + "&verifier=" + bad)
				if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusNotFound {
					t.Errorf("resume %s: %d", bad, resp.StatusCode)
				}
				for _, param := range []string{"client_id", "state", "nonce"} {
					p := authParams(c.ID, c.RedirectURIs[0], "v").Encode() + "&" + param + "=" + bad
					if param == "client_id" {
						p = strings.Replace(p, "client_id="+c.ID, "client_id="+bad, 1)
					}
					resp, body := send(t, "GET", env.URL+"/oauth2/authorize?"+p, nil, nil)
					if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
						t.Errorf("%s=%s at authorize: %d %v", param, bad, resp.StatusCode, body)
					}
				}
			}
		})
	}
}

// TestBindingCookiesAreCapped: each sign-in in progress has its own binding
// cookie, but a browser that starts flows in a loop keeps at most 16: the
// oldest are dropped, the newest still complete.
func TestBindingCookiesAreCapped(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	r := newRP(t, env, env.WebClient("client_secret_basic"), oauth2.AuthStyleInHeader, "openid")
	b := latchtest.NewBrowser(t)
	var ids []string
	for i := range 24 {
		ids = append(ids, env.StartAuthorize(b, r.conf.AuthCodeURL(fmt.Sprintf("capped-state-%03d", i), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))))
	}
	n := 0
	for _, c := range b.HTTP.Jar.Cookies(mustURL(env.URL)) {
		if strings.HasPrefix(c.Name, "latch_browser_") {
			n++
		}
	}
	if n != 16 {
		t.Fatalf("%d binding cookies after 24 flows, want 16", n)
	}
	for _, id := range ids[len(ids)-16:] {
		if loc := env.Resume(b, env.Approve(id, map[string]any{"user": "alice"})); loc.Query().Get("code") == "" {
			t.Fatalf("recent flow: %s", loc)
		}
	}
	if resp, _ := b.Get(env.Approve(ids[0], map[string]any{"user": "alice"})); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("oldest flow, its cookie dropped: %d", resp.StatusCode)
	}
}
