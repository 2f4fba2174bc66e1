package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchhq/latch/approval"
	"github.com/latchhq/latch/latchtest"
)

// TestApprovalTokenClaims: access_token_claims reach the JWT access token
// and introspection, id_token_claims the ID token and userinfo whatever the
// scopes, and both survive a refresh.
func TestApprovalTokenClaims(t *testing.T) {
	ctx := context.Background()
	env := latchtest.Start(t, latchtest.Options{})
	c := env.WebClient("client_secret_basic")
	r := newRP(t, env, c, oauth2.AuthStyleInHeader, "openid", "offline_access")
	tok, _ := r.login(t, latchtest.NewBrowser(t), map[string]any{"user": "u1",
		"access_token_claims": map[string]any{"roles": []string{"admin"}, "tenant": "t1"},
		"id_token_claims":     map[string]any{"plan": "pro", "email": "ann@example.com"}})
	check := func(step string, tok *oauth2.Token) {
		t.Helper()
		_, at := jwtParts(t, tok.AccessToken)
		if fmt.Sprint(at["roles"]) != "[admin]" || at["tenant"] != "t1" || at["plan"] != nil || at["client_id"] != c.ID {
			t.Errorf("%s: access token claims %v", step, at)
		}
		_, id := jwtParts(t, tok.Extra("id_token").(string))
		// email without the email scope: id_token_claims ignore scopes.
		if id["plan"] != "pro" || id["email"] != "ann@example.com" || id["roles"] != nil || id["sub"] != "u1" {
			t.Errorf("%s: id token claims %v", step, id)
		}
		in := introspect(t, env, tok.AccessToken, c.ID, c.Secret)
		if in["active"] != true || fmt.Sprint(in["roles"]) != "[admin]" || in["tenant"] != "t1" || in["sub"] != "u1" {
			t.Errorf("%s: introspection %v", step, in)
		}
		ui, err := r.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatalf("%s: userinfo: %v", step, err)
		}
		var uc map[string]any
		ui.Claims(&uc)
		if uc["plan"] != "pro" || uc["email"] != "ann@example.com" || uc["sub"] != "u1" || uc["roles"] != nil {
			t.Errorf("%s: userinfo %v", step, uc)
		}
	}
	check("login", tok)
	next, err := r.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	check("refresh", next)
}

// TestApprovalClaimsRefused: a claim Latch sets itself, or a claims
// object over 8 KiB, is refused with 400 naming it, and the session stays
// pending (a corrected approval then works).
func TestApprovalClaimsRefused(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	c := env.WebClient("client_secret_basic")
	rp := env.NewRP(c)
	u, _ := rp.AuthURL([]string{"openid"})
	b := latchtest.NewBrowser(t)
	id := env.StartAuthorize(b, u)
	approve := "/api/auth_session/" + id + "/approve"
	for _, field := range []string{"claims", "access_token_claims", "id_token_claims"} {
		for _, name := range approval.ReservedClaims {
			status, out := env.API("POST", approve, map[string]any{"user": "u1", field: map[string]any{"ok": 1, name: "x"}})
			if desc, _ := out["error_description"].(string); status != http.StatusBadRequest || !strings.Contains(desc, field) || !strings.Contains(desc, `"`+name+`"`) {
				t.Errorf("%s.%s: %d %v, want 400 naming both", field, name, status, out)
			}
		}
	}
	big := strings.Repeat("x", 8<<10)
	for _, field := range []string{"claims", "access_token_claims", "id_token_claims"} {
		status, out := env.API("POST", approve, map[string]any{"user": "u1", field: map[string]any{"blob": big}})
		if desc, _ := out["error_description"].(string); status != http.StatusBadRequest || !strings.HasPrefix(desc, field+" ") {
			t.Errorf("%s over 8 KiB: %d %v", field, status, out)
		}
	}
	if _, v := env.API("GET", "/api/auth_session/"+id, nil); v["state"] != "pending" {
		t.Fatalf("refused approvals changed the session: %v", v)
	}
	loc := env.Resume(b, env.Approve(id, map[string]any{"user": "u1", "access_token_claims": map[string]any{"tenant": "t1"}}))
	if loc.Query().Get("code") == "" {
		t.Fatalf("corrected approval: %v", loc)
	}
}

// TestMaxAgeAndAuthTime: the session read shows max_age (null without
// one); with max_age, approve needs an auth_time no older than it; an
// auth_time in the future is refused; the ID token carries the accepted
// auth_time.
func TestMaxAgeAndAuthTime(t *testing.T) {
	ctx := context.Background()
	env := latchtest.Start(t, latchtest.Options{})
	c := env.WebClient("client_secret_basic")
	r := newRP(t, env, c, oauth2.AuthStyleInHeader, "openid")

	verifier := oauth2.GenerateVerifier()
	b := latchtest.NewBrowser(t)
	id := env.StartAuthorize(b, r.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if _, v := env.API("GET", "/api/auth_session/"+id, nil); v["max_age"] != nil {
		t.Errorf("max_age without one in the request: %v", v["max_age"])
	}
	future := time.Now().Add(time.Hour).Unix()
	if status, out := env.API("POST", "/api/auth_session/"+id+"/approve", map[string]any{"user": "u1", "auth_time": future}); status != http.StatusBadRequest {
		t.Errorf("future auth_time: %d %v", status, out)
	}

	b = latchtest.NewBrowser(t)
	id = env.StartAuthorize(b, r.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("max_age", "300")))
	_, v := env.API("GET", "/api/auth_session/"+id, nil)
	if v["max_age"] != float64(300) {
		t.Fatalf("max_age in the session read: %v", v["max_age"])
	}
	approve := "/api/auth_session/" + id + "/approve"
	for name, body := range map[string]map[string]any{
		"no auth_time":        {"user": "u1"},
		"auth_time too old":   {"user": "u1", "auth_time": time.Now().Add(-301 * time.Second).Unix()},
		"auth_time from 2001": {"user": "u1", "auth_time": 1000000000},
		"auth_time ahead":     {"user": "u1", "auth_time": time.Now().Add(time.Minute).Unix()},
	} {
		if status, out := env.API("POST", approve, body); status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error_description"]), "auth_time") {
			t.Errorf("%s: %d %v, want 400 about auth_time", name, status, out)
		}
	}
	authTime := time.Now().Add(-100 * time.Second).Unix()
	loc := env.Resume(b, env.Approve(id, map[string]any{"user": "u1", "auth_time": authTime}))
	tok, err := r.conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, claims := jwtParts(t, tok.Extra("id_token").(string)); claims["auth_time"] != float64(authTime) {
		t.Errorf("id_token auth_time %v, want %d", claims["auth_time"], authTime)
	}
}

// TestConsentFields: the session read names the redirect URI, its host
// and whether it is loopback, and the resources (none yet), so a consent
// screen can say who receives the code; the development page shows them.
func TestConsentFields(t *testing.T) {
	for _, tc := range []struct {
		name, registered, sent, host string
		loopback                     bool
	}{
		{"web", "https://app.example/cb", "https://app.example/cb", "app.example", false},
		{"native localhost", "http://localhost/callback", "http://localhost:49152/callback", "localhost", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := latchtest.Start(t, latchtest.Options{DevPage: true})
			c := env.RegisterClient(map[string]any{"client_name": "App", "redirect_uris": []string{tc.registered}, "token_endpoint_auth_method": "none"})
			conf := oauth2.Config{ClientID: c.ID, RedirectURL: tc.sent, Endpoint: oauth2.Endpoint{AuthURL: env.URL + "/oauth2/authorize"}, Scopes: []string{"openid"}}
			b := latchtest.NewBrowser(t)
			id := env.StartAuthorize(b, conf.AuthCodeURL("", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			_, v := env.API("GET", "/api/auth_session/"+id, nil)
			if v["redirect_uri"] != tc.sent || v["redirect_host"] != tc.host || v["redirect_loopback"] != tc.loopback ||
				fmt.Sprint(v["resources"]) != "[]" || v["max_age"] != nil {
				t.Errorf("session read %v", v)
			}
			_, page := b.Get(env.URL + approval.DevPagePath + "?token=" + id)
			if !strings.Contains(string(page), "<strong>"+tc.host+"</strong>") || strings.Contains(string(page), "on this computer") != tc.loopback {
				t.Errorf("dev page does not show the redirect host: %s", page)
			}
		})
	}
}
