package server_test

import (
	"context"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchhq/latch/latchtest"
)

// TestReadmeGoSnippet runs the README's go-oidc + x/oauth2 snippet
// verbatim (TestReadmeSnippetsAreTested keeps the two identical).
func TestReadmeGoSnippet(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	c := env.WebClient("client_secret_basic")
	ctx, issuer, clientID, clientSecret, redirectURL, state := context.Background(), env.URL, c.ID, c.Secret, c.RedirectURIs[0], "st-1"
	err := func() error {
		provider, err := oidc.NewProvider(ctx, issuer)
		if err != nil {
			return err
		}
		conf := oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, Endpoint: provider.Endpoint(),
			RedirectURL: redirectURL, Scopes: []string{oidc.ScopeOpenID, "email", "offline_access"}}
		// on /login
		verifier := oauth2.GenerateVerifier()
		authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
		callback := env.Authorize(latchtest.NewBrowser(t), authURL, map[string]any{"user": "user-1"}) // (the test's browser and host app)
		if callback.Query().Get("state") != state || callback.Query().Get("iss") != issuer {
			t.Fatalf("callback %v", callback)
		}
		code := callback.Query().Get("code")
		// on /callback (check r.URL.Query().Get("state") and "iss" first)
		tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			return err
		}
		rawIDToken, _ := tok.Extra("id_token").(string)
		idToken, err := provider.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, rawIDToken)
		if err != nil {
			return err
		}
		if idToken.Subject != "user-1" {
			t.Errorf("sub %q", idToken.Subject)
		}
		return nil
	}()
	if err != nil {
		t.Fatal(err)
	}
}
