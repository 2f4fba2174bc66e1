package server_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchhq/latch/latchtest"
)

// Interop tests: what relying-party libraries nobody here wrote do by
// default must work the first time (issue 10). They drive coreos/go-oidc
// and golang.org/x/oauth2 as a web app or native app would.

// TestInteropWebAppDefaults: a web app with go-oidc's defaults. The
// authorization request carries no state (PKCE is the CSRF defence, as
// openid-client does it) and a one-character nonce; the callback has iss
// and no state; the ID token is RS256, which is all go-oidc accepts unless
// told otherwise, and carries the nonce.
func TestInteropWebAppDefaults(t *testing.T) {
	ctx := context.Background()
	env := latchtest.Start(t, latchtest.Options{})
	c := env.WebClient("client_secret_basic")
	r := newRP(t, env, c, oauth2.AuthStyleInHeader, "openid", "offline_access")
	verifier := oauth2.GenerateVerifier()
	authURL := r.conf.AuthCodeURL("", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n"))
	if strings.Contains(authURL, "state=") {
		t.Fatalf("x/oauth2 sent a state: %s", authURL)
	}
	loc := env.Authorize(latchtest.NewBrowser(t), authURL, map[string]any{"user": "u1"})
	q := loc.Query()
	if _, has := q["state"]; has || q.Get("iss") != env.URL || q.Get("code") == "" {
		t.Fatalf("callback %v: want code and iss, no state", q)
	}
	tok, err := r.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw := tok.Extra("id_token").(string)
	idt, err := r.provider.Verifier(&oidc.Config{ClientID: c.ID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc with default settings (RS256) refuses the ID token: %v", err)
	}
	if h, _ := jwtParts(t, raw); h["alg"] != "RS256" || idt.Nonce != "n" {
		t.Errorf("id_token alg %v nonce %q, want RS256 and n", h["alg"], idt.Nonce)
	}

	// A short state is echoed as sent.
	loc = env.Authorize(latchtest.NewBrowser(t), r.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), map[string]any{"user": "u1"})
	if loc.Query().Get("state") != "s" {
		t.Errorf("short state not echoed: %v", loc.Query())
	}
	// So is an absent state in an error redirect.
	resp, _ := latchtest.NewBrowser(t).Get(r.conf.AuthCodeURL("", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("scope", "openid nope")))
	if q := latchtest.Location(t, resp).Query(); q.Get("error") != "invalid_scope" || q.Get("iss") != env.URL {
		t.Errorf("error redirect without state: %v", q)
	}
}

// TestInteropSecretMethodsInterchangeable: a client registered with
// client_secret_basic may send client_secret_post and the other way round
// (libraries differ in their defaults); a wrong secret still fails either
// way with 401 invalid_client.
func TestInteropSecretMethodsInterchangeable(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	for _, tc := range []struct {
		registered string
		style      oauth2.AuthStyle
	}{
		{"client_secret_basic", oauth2.AuthStyleInParams},
		{"client_secret_post", oauth2.AuthStyleInHeader},
	} {
		t.Run(tc.registered, func(t *testing.T) {
			c := env.WebClient(tc.registered)
			r := newRP(t, env, c, tc.style, "openid", "offline_access")
			tok, _ := r.login(t, latchtest.NewBrowser(t), map[string]any{"user": "u1"})
			if _, err := r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
				t.Fatalf("refresh with the other method: %v", err)
			}
			form := url.Values{"token": {tok.AccessToken}}
			id, sec := "", ""
			if tc.style == oauth2.AuthStyleInHeader {
				id, sec = c.ID, "wrong"
			} else {
				form.Set("client_id", c.ID)
				form.Set("client_secret", "wrong")
			}
			if resp, out := postForm(t, env.URL+"/oauth2/revoke", form, id, sec); resp.StatusCode != http.StatusUnauthorized || out["error"] != "invalid_client" {
				t.Errorf("wrong secret: %d %v", resp.StatusCode, out)
			}
		})
	}
	// A public client gains nothing: it has no secret to send.
	pub := env.NativeClient()
	resp, out := postForm(t, env.URL+"/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"},
		"client_id": {pub.ID}, "client_secret": {"anything"}}, "", "")
	if resp.StatusCode != http.StatusUnauthorized || out["error"] != "invalid_client" {
		t.Errorf("public client with a secret: %d %v", resp.StatusCode, out)
	}
}

// TestInteropNativeLocalhostEphemeralPort: a native app registered with
// http://localhost/callback (as MCP and CLI clients register) listens on an
// ephemeral port and completes the flow there; another path or another
// loopback host name is not the registered URI.
func TestInteropNativeLocalhostEphemeralPort(t *testing.T) {
	ctx := context.Background()
	env := latchtest.Start(t, latchtest.Options{})
	c := env.RegisterClient(map[string]any{"client_name": "CLI", "redirect_uris": []string{"http://localhost/callback"},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	p, err := oidc.NewProvider(ctx, env.URL)
	if err != nil {
		t.Fatal(err)
	}
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams
	redirect := "http://localhost:" + itoa(port) + "/callback"
	conf := oauth2.Config{ClientID: c.ID, Endpoint: ep, RedirectURL: redirect, Scopes: []string{"openid", "offline_access"}}
	verifier := oauth2.GenerateVerifier()
	loc := env.Authorize(latchtest.NewBrowser(t), conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), map[string]any{"user": "u1"})
	if !strings.HasPrefix(loc.String(), redirect+"?") {
		t.Fatalf("redirected to %s, want %s", loc, redirect)
	}
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if _, err := p.Verifier(&oidc.Config{ClientID: c.ID}).Verify(ctx, tok.Extra("id_token").(string)); err != nil {
		t.Fatalf("id_token: %v", err)
	}
	for _, bad := range []string{"http://localhost:" + itoa(port) + "/other", "http://127.0.0.1:" + itoa(port) + "/callback",
		"https://localhost:" + itoa(port) + "/callback", "http://localhost.evil.example:" + itoa(port) + "/callback"} {
		conf.RedirectURL = bad
		resp, body := latchtest.NewBrowser(t).Get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d %s, want a 400 page and no redirect", bad, resp.StatusCode, body)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
