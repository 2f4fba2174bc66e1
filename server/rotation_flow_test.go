package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/keys"
	"github.com/latchhq/latch/latchtest"
)

// TestRotationWithTokensInFlight: after a rotation, tokens signed by the old
// key still verify through the JWKS (and at userinfo), a pre-published key
// does not sign yet, and once active the new key signs new tokens.
func TestRotationWithTokensInFlight(t *testing.T) {
	ctx := context.Background()
	env := latchtest.Start(t, latchtest.Options{})
	r := newRP(t, env, env.WebClient("client_secret_basic"), oauth2.AuthStyleInHeader, "openid", "profile")
	oldTok, _ := r.login(t, latchtest.NewBrowser(t), map[string]any{"user": "rot-user"})
	oldHeader, _ := jwtParts(t, oldTok.AccessToken)
	oldKID := oldHeader["kid"].(string)
	fresh := func() string {
		t.Helper()
		c := env.CreateClient(clients.Metadata{ClientName: "svc", GrantTypes: []string{"client_credentials"},
			TokenEndpointAuthMethod: "client_secret_basic", Scope: "profile"})
		tok, err := (&clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: env.URL + "/oauth2/token"}).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := jwtParts(t, tok.AccessToken)
		return h["kid"].(string)
	}

	prePublished, err := env.App.Keys.Rotate(ctx, keys.ES256, time.Hour, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if kid := fresh(); kid != oldKID {
		t.Fatalf("pre-published key %s signs already (got %s)", prePublished, kid)
	}
	active, err := env.App.Keys.Rotate(ctx, keys.ES256, 0, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if kid := fresh(); kid != active {
		t.Fatalf("new tokens signed by %s, want the new key %s", kid, active)
	}

	set := oidc.NewRemoteKeySet(ctx, env.URL+"/.well-known/jwks.json")
	for _, kid := range []string{oldKID, prePublished, active} {
		if !publishes(t, env, kid) {
			t.Fatalf("JWKS lacks %s", kid)
		}
	}
	if _, err := set.VerifySignature(ctx, oldTok.AccessToken); err != nil {
		t.Fatalf("old-key access token no longer verifies through the JWKS: %v", err)
	}
	idt, err := r.provider.Verifier(&oidc.Config{ClientID: r.client.ID}).Verify(ctx, oldTok.Extra("id_token").(string))
	if err != nil || idt.Subject != "rot-user" {
		t.Fatalf("old-key ID token: %v", err)
	}
	if _, err := r.provider.UserInfo(ctx, oauth2.StaticTokenSource(oldTok)); err != nil {
		t.Fatalf("old-key access token refused at userinfo: %v", err)
	}
}

func publishes(t *testing.T, env *latchtest.Env, kid string) bool {
	t.Helper()
	_, body := send(t, "GET", env.URL+"/.well-known/jwks.json", nil, nil)
	for _, k := range body["keys"].([]any) {
		if k.(map[string]any)["kid"] == kid {
			return true
		}
	}
	return false
}

// TestRS256IDTokensPerClient: ID tokens are RS256 for a client that
// registers no id_token_signed_response_alg (OpenID Connect Registration
// §2), ES256 for one that registers it, RS256 for one naming RS256 when the
// server default is ES256 (the key is made on first use); all verify
// through the JWKS, and access tokens stay ES256.
func TestRS256IDTokensPerClient(t *testing.T) {
	ctx := context.Background()
	env := latchtest.Start(t, latchtest.Options{})
	esClient := env.RegisterClient(map[string]any{"client_name": "ES", "redirect_uris": []string{"https://client.example/cb"},
		"grant_types": []string{"authorization_code", "refresh_token"}, "id_token_signed_response_alg": "ES256"})
	defClient := env.WebClient("client_secret_basic")
	esEnv := latchtest.Start(t, latchtest.Options{Configure: func(c *config.Config) { c.Tokens.IDTokenSigningAlg = "ES256" }})
	rsClient := esEnv.RegisterClient(map[string]any{"client_name": "RS", "redirect_uris": []string{"https://client.example/cb"},
		"grant_types": []string{"authorization_code", "refresh_token"}, "id_token_signed_response_alg": "RS256"})
	esDefault := esEnv.WebClient("client_secret_basic")

	for _, tc := range []struct {
		env         *latchtest.Env
		client      latchtest.Client
		wantIDAlg   string
		description string
	}{
		{env, defClient, "RS256", "default client"},
		{env, esClient, "ES256", "ES256 client"},
		{esEnv, rsClient, "RS256", "RS256 client, server default ES256"},
		{esEnv, esDefault, "ES256", "default client, server default ES256"},
	} {
		env := tc.env
		r := newRP(t, env, tc.client, oauth2.AuthStyleInHeader, "openid", "offline_access")
		tok, _ := r.login(t, latchtest.NewBrowser(t), map[string]any{"user": "u"})
		raw := tok.Extra("id_token").(string)
		if h, _ := jwtParts(t, raw); h["alg"] != tc.wantIDAlg {
			t.Fatalf("%s: id_token alg %v, want %s", tc.description, h["alg"], tc.wantIDAlg)
		}
		v := r.provider.Verifier(&oidc.Config{ClientID: tc.client.ID, SupportedSigningAlgs: []string{tc.wantIDAlg}})
		if _, err := v.Verify(ctx, raw); err != nil {
			t.Fatalf("%s: verify id_token: %v", tc.description, err)
		}
		if h, _ := jwtParts(t, tok.AccessToken); h["alg"] != "ES256" {
			t.Fatalf("%s: access token alg %v", tc.description, h["alg"])
		}
		// A refresh issues another ID token with the same algorithm.
		next, err := r.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatal(err)
		}
		if h, _ := jwtParts(t, next.Extra("id_token").(string)); h["alg"] != tc.wantIDAlg {
			t.Fatalf("%s: refreshed id_token alg %v", tc.description, h["alg"])
		}
	}
}
