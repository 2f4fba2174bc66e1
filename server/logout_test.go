package server_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	fjwt "github.com/ory/fosite/token/jwt"
	"golang.org/x/oauth2"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
)

const signedOutURI = "https://client.example/signed-out"

// logoutClient registers, through the API, a client that may be sent back
// to signedOutURI after sign-out.
func logoutClient(env *latchtest.Env, extra map[string]any) latchtest.Client {
	body := map[string]any{
		"client_name": "Logout RP", "redirect_uris": []string{"https://client.example/cb"},
		"grant_types":               []string{"authorization_code", "refresh_token"},
		"post_logout_redirect_uris": []string{signedOutURI},
	}
	for k, v := range extra {
		body[k] = v
	}
	return env.RegisterClient(body)
}

// endSessionEndpoint reads the logout URL from discovery, as an RP does.
func (r *rp) endSessionEndpoint(t *testing.T) string {
	t.Helper()
	var m struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := r.provider.Claims(&m); err != nil || m.EndSession == "" {
		t.Fatalf("discovery has no end_session_endpoint (%v)", err)
	}
	return m.EndSession
}

// silent sends prompt=none from b and returns the redirect's query.
func (r *rp) silent(t *testing.T, b *latchtest.Browser) url.Values {
	t.Helper()
	u := r.conf.AuthCodeURL("silent-state", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
		oauth2.SetAuthURLParam("prompt", "none"))
	resp, body := b.Get(u)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("prompt=none: %d %s", resp.StatusCode, body)
	}
	return latchtest.Location(t, resp).Query()
}

func wantSilentCode(t *testing.T, r *rp, b *latchtest.Browser) {
	t.Helper()
	if q := r.silent(t, b); q.Get("code") == "" {
		t.Fatalf("prompt=none should get a code from a signed-in browser, got %v", q)
	}
}

func wantLoginRequired(t *testing.T, r *rp, b *latchtest.Browser) {
	t.Helper()
	if q := r.silent(t, b); q.Get("error") != "login_required" {
		t.Fatalf("prompt=none after sign-out: want login_required, got %v", q)
	}
}

func TestRPInitiatedLogoutWithIDTokenHint(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	c := logoutClient(env, nil)
	r := newRP(t, env, c, oauth2.AuthStyleInHeader, "openid", "profile")
	b := latchtest.NewBrowser(t)
	tok, _ := r.login(t, b, map[string]any{"user": "alice", "remember": true})
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := r.provider.Verifier(&oidc.Config{ClientID: c.ID}).Verify(context.Background(), rawID)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		SID string `json:"sid"`
	}
	if err := idt.Claims(&claims); err != nil || len(claims.SID) < 22 {
		t.Fatalf("ID token sid %q (%v): want the login session's id", claims.SID, err)
	}
	wantSilentCode(t, r, b)

	// A second approval in the same browser starts a newer login session;
	// the hint names the older one, and sign-out ends both.
	tok2, _ := r.login(t, b, map[string]any{"user": "alice"})
	if _, c2 := jwtParts(t, tok2.Extra("id_token").(string)); c2["sid"] == claims.SID || c2["sid"] == nil {
		t.Fatalf("second login session sid %v", c2["sid"])
	}

	q := url.Values{"id_token_hint": {rawID}, "post_logout_redirect_uri": {signedOutURI}, "state": {"bye-123"}, "ui_locales": {"fr-CA"}}
	resp, body := b.Get(r.endSessionEndpoint(t) + "?" + q.Encode())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	if loc := latchtest.Location(t, resp); loc.String() != signedOutURI+"?state=bye-123" {
		t.Fatalf("logout redirected to %s", loc)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("logout answer is cacheable")
	}
	wantLoginRequired(t, r, b)

	// Logging out again with the same (now stale) hint is harmless.
	resp, _ = b.Get(r.endSessionEndpoint(t) + "?" + q.Encode())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("second logout: %d", resp.StatusCode)
	}
}

func TestLogoutNeverRedirectsToUnregisteredURI(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	c := logoutClient(env, nil)
	other := logoutClient(env, map[string]any{"post_logout_redirect_uris": []string{"https://other.example/bye"}})
	r := newRP(t, env, c, oauth2.AuthStyleInHeader, "openid")
	b := latchtest.NewBrowser(t)
	tok, _ := r.login(t, b, map[string]any{"user": "alice", "remember": true})
	rawID := tok.Extra("id_token").(string)
	for name, q := range map[string]url.Values{
		"attacker URI":              {"id_token_hint": {rawID}, "post_logout_redirect_uri": {"https://evil.example/"}},
		"prefix of registered":      {"id_token_hint": {rawID}, "post_logout_redirect_uri": {"https://client.example/signed-out/x"}},
		"trailing slash":            {"id_token_hint": {rawID}, "post_logout_redirect_uri": {signedOutURI + "/"}},
		"query added":               {"id_token_hint": {rawID}, "post_logout_redirect_uri": {signedOutURI + "?next=https://evil.example"}},
		"another client's URI":      {"id_token_hint": {rawID}, "post_logout_redirect_uri": {"https://other.example/bye"}},
		"client_id not in hint aud": {"id_token_hint": {rawID}, "client_id": {other.ID}, "post_logout_redirect_uri": {"https://other.example/bye"}},
		"no client at all":          {"post_logout_redirect_uri": {signedOutURI}},
		"forged hint":               {"id_token_hint": {rawID[:len(rawID)-4] + "AAAA"}, "post_logout_redirect_uri": {signedOutURI}},
		"access token as hint":      {"id_token_hint": {tok.AccessToken}, "post_logout_redirect_uri": {signedOutURI}},
	} {
		resp, body := b.Get(env.URL + "/oauth2/logout?" + q.Encode())
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d Location %q, want a 400 page", name, resp.StatusCode, resp.Header.Get("Location"))
		}
		if !strings.Contains(string(body), "Sign-out problem") {
			t.Errorf("%s: body %s", name, body)
		}
	}
	// None of those ended the session.
	wantSilentCode(t, r, b)
}

func TestLogoutWithExpiredHintStillEndsTheSession(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	c := logoutClient(env, nil)
	r := newRP(t, env, c, oauth2.AuthStyleInHeader, "openid")
	b := latchtest.NewBrowser(t)
	tok, _ := r.login(t, b, map[string]any{"user": "alice", "remember": true})
	// The RP's copy of the ID token, as it is hours later: the same claims,
	// signed by Latch's key, past exp.
	header, claims := jwtParts(t, tok.Extra("id_token").(string))
	claims["iat"], claims["exp"] = time.Now().Add(-3*time.Hour).Unix(), time.Now().Add(-2*time.Hour).Unix()
	rawID, _, err := env.App.Keys.Signer(header["alg"].(string)).Generate(context.Background(), claims, &fjwt.Headers{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.provider.Verifier(&oidc.Config{ClientID: c.ID}).Verify(context.Background(), rawID); err == nil {
		t.Fatal("test setup: the hint should be expired")
	}
	// POST without the browser's cookie (a cross-site form post carries no
	// Lax cookie): the hint's sid finds the session.
	resp, _ := latchtest.NewBrowser(t).HTTP.PostForm(env.URL+"/oauth2/logout", url.Values{
		"id_token_hint": {rawID}, "post_logout_redirect_uri": {signedOutURI}, "state": {"s1"}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || latchtest.Location(t, resp).Query().Get("state") != "s1" {
		t.Fatalf("logout with an expired hint: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	wantLoginRequired(t, r, b)
}

func TestLogoutWithoutHintAsksTheUser(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	c := logoutClient(env, nil)
	r := newRP(t, env, c, oauth2.AuthStyleInHeader, "openid")
	b := latchtest.NewBrowser(t)
	r.login(t, b, map[string]any{"user": "alice", "remember": true})

	// A plain link (what another site can plant) only shows a question.
	q := url.Values{"client_id": {c.ID}, "post_logout_redirect_uri": {signedOutURI}, "state": {"st"}}
	resp, body := b.Get(env.URL + "/oauth2/logout?" + q.Encode())
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<form method=post") {
		t.Fatalf("logout without hint: %d %s", resp.StatusCode, body)
	}
	wantSilentCode(t, r, b)
	// A post without the page's confirmation value is not enough either.
	forged := url.Values{"client_id": {c.ID}, "post_logout_redirect_uri": {signedOutURI}, "confirm": {"guess"}}
	resp, err := b.HTTP.PostForm(env.URL+"/oauth2/logout", forged)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("forged confirmation: %d", resp.StatusCode)
	}
	wantSilentCode(t, r, b)

	m := regexp.MustCompile(`name=confirm value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no confirmation value in %s", body)
	}
	q.Set("confirm", string(m[1]))
	resp, err = b.HTTP.PostForm(env.URL+"/oauth2/logout", q)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || latchtest.Location(t, resp).String() != signedOutURI+"?state=st" {
		t.Fatalf("confirmed logout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	wantLoginRequired(t, r, b)

	// Without a session and without a redirect: the signed-out page.
	resp, body = b.Get(env.URL + "/oauth2/logout")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "signed out") {
		t.Fatalf("signed-out page: %d %s", resp.StatusCode, body)
	}
}

func TestHostAppEndsUserSessions(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	c := logoutClient(env, nil)
	r := newRP(t, env, c, oauth2.AuthStyleInHeader, "openid")
	alice1, alice2, bob := latchtest.NewBrowser(t), latchtest.NewBrowser(t), latchtest.NewBrowser(t)
	r.login(t, alice1, map[string]any{"user": "alice", "remember": true})
	r.login(t, alice2, map[string]any{"user": "alice", "remember": true})
	r.login(t, bob, map[string]any{"user": "bob", "remember": true})

	if status, _ := env.APIWithKey("", "DELETE", "/api/users/alice/sessions", nil); status != http.StatusUnauthorized {
		t.Fatalf("without API key: %d", status)
	}
	if status, out := env.API("DELETE", "/api/users/alice/sessions", nil); status != http.StatusNoContent {
		t.Fatalf("end sessions: %d %v", status, out)
	}
	wantLoginRequired(t, r, alice1)
	wantLoginRequired(t, r, alice2)
	wantSilentCode(t, r, bob)
	// Idempotent: no sessions left is still a success.
	if status, _ := env.API("DELETE", "/api/users/alice/sessions", nil); status != http.StatusNoContent {
		t.Fatalf("second end: %d", status)
	}
	status, out := env.API("GET", "/api/audit?event=session.ended&user=alice", nil)
	if evs, _ := out["events"].([]any); status != http.StatusOK || len(evs) != 2 {
		t.Fatalf("audit of ended sessions: %d %v", status, out)
	}
}

func TestEndedSessionRevokesOnlineGrants(t *testing.T) {
	for _, tc := range []struct {
		mode                string
		onlineDies, offDies bool
	}{
		{config.RevokeOnline, true, false},
		{config.RevokeAll, true, true},
		{config.RevokeNone, false, false},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			env := latchtest.Start(t, latchtest.Options{Configure: func(c *config.Config) { c.Logout.RevokeTokens = tc.mode }})
			c := logoutClient(env, nil)
			online := newRP(t, env, c, oauth2.AuthStyleInHeader, "openid")
			offline := newRP(t, env, c, oauth2.AuthStyleInHeader, "openid", "offline_access")
			b := latchtest.NewBrowser(t)
			onTok, _ := online.login(t, b, map[string]any{"user": "alice"})
			offTok, _ := offline.login(t, b, map[string]any{"user": "alice"})
			if offTok.RefreshToken == "" {
				t.Fatal("offline_access should give a refresh token")
			}
			if status, _ := env.API("DELETE", "/api/users/alice/sessions", nil); status != http.StatusNoContent {
				t.Fatal(status)
			}
			if active := introspect(t, env, onTok.AccessToken, c.ID, c.Secret)["active"] == true; active == tc.onlineDies {
				t.Errorf("online grant's access token active=%v after the session ended", active)
			}
			_, err := offline.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: offTok.RefreshToken}).Token()
			if (err != nil) != tc.offDies {
				t.Errorf("offline grant's refresh after the session ended: err=%v", err)
			}
		})
	}
}
