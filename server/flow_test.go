package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/latchtest"
)

// rp is a relying party: an x/oauth2 config plus go-oidc's verifier.
type rp struct {
	env      *latchtest.Env
	provider *oidc.Provider
	conf     oauth2.Config
	client   latchtest.Client
}

func newRP(t *testing.T, env *latchtest.Env, c latchtest.Client, style oauth2.AuthStyle, scopes ...string) *rp {
	t.Helper()
	p, err := oidc.NewProvider(context.Background(), env.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	ep := p.Endpoint()
	ep.AuthStyle = style
	redirect := c.RedirectURIs[0]
	if strings.HasPrefix(redirect, "http://127.0.0.1/") {
		// RFC 8252: a native app listens on any free port.
		redirect = strings.Replace(redirect, "127.0.0.1/", "127.0.0.1:53127/", 1)
	}
	return &rp{env: env, provider: p, client: c, conf: oauth2.Config{
		ClientID: c.ID, ClientSecret: c.Secret, Endpoint: ep, RedirectURL: redirect, Scopes: scopes,
	}}
}

// login runs the browser flow and returns the token response.
func (r *rp) login(t *testing.T, b *latchtest.Browser, approve map[string]any) (*oauth2.Token, string) {
	t.Helper()
	verifier, state, nonce := oauth2.GenerateVerifier(), "state-"+oauth2.GenerateVerifier()[:12], "nonce-"+oauth2.GenerateVerifier()[:12]
	loc := r.env.Authorize(b, r.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), approve)
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), r.conf.RedirectURL+"?") {
		t.Fatalf("redirected to %s, want %s", loc, r.conf.RedirectURL)
	}
	if q.Get("state") != state || q.Get("iss") != r.env.URL || q.Get("code") == "" {
		t.Fatalf("authorization response %v: want code, state %q and iss %q", q, state, r.env.URL)
	}
	tok, err := r.conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok, nonce
}

func jwtParts(t *testing.T, raw string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

// introspect asks as a client (basic auth) or, with id "", with the API key.
func introspect(t *testing.T, env *latchtest.Env, token, id, secret string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("POST", env.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	} else {
		req.Header.Set("X-API-Key", latchtest.APIKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("introspect: status %d", resp.StatusCode)
	}
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return out
}

func TestAuthorizationCodeFlowWithRealClients(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	cases := []struct {
		name   string
		client latchtest.Client
		style  oauth2.AuthStyle
	}{
		{"confidential client_secret_basic", env.WebClient("client_secret_basic"), oauth2.AuthStyleInHeader},
		{"confidential client_secret_post", env.WebClient("client_secret_post"), oauth2.AuthStyleInParams},
		{"public client, PKCE only", env.NativeClient(), oauth2.AuthStyleInParams},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r := newRP(t, env, tc.client, tc.style, "openid", "profile", "email", "offline_access")
			b := latchtest.NewBrowser(t)
			authTime := time.Now().Add(-time.Minute).Unix()
			tok, nonce := r.login(t, b, map[string]any{
				"user":      "user-42",
				"auth_time": authTime,
				"claims": map[string]any{"email": "ann@example.com", "email_verified": true, "name": "Ann",
					"phone_number": "+1 555 0100"},
			})

			// ID token: go-oidc verifies signature, iss, aud, exp; we check the rest.
			rawID, _ := tok.Extra("id_token").(string)
			idt, err := r.provider.Verifier(&oidc.Config{ClientID: tc.client.ID}).Verify(ctx, rawID)
			if err != nil {
				t.Fatalf("verify id_token: %v", err)
			}
			if idt.Nonce != nonce || idt.Subject != "user-42" {
				t.Errorf("id_token nonce %q sub %q", idt.Nonce, idt.Subject)
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Errorf("at_hash: %v", err)
			}
			var idClaims struct {
				AuthTime int64  `json:"auth_time"`
				Email    string `json:"email"`
				Phone    string `json:"phone_number"`
			}
			idt.Claims(&idClaims)
			if idClaims.AuthTime != authTime || idClaims.Email != "ann@example.com" || idClaims.Phone != "" {
				t.Errorf("id_token claims %+v", idClaims)
			}

			// Access token: RFC 9068 JWT, signed by a key in our JWKS.
			if _, err := oidc.NewRemoteKeySet(ctx, env.URL+"/.well-known/jwks.json").VerifySignature(ctx, tok.AccessToken); err != nil {
				t.Fatalf("access token signature: %v", err)
			}
			h, c := jwtParts(t, tok.AccessToken)
			if h["typ"] != "at+jwt" || h["kid"] == nil {
				t.Errorf("access token header %v", h)
			}
			if c["client_id"] != tc.client.ID || c["iss"] != env.URL || c["sub"] != "user-42" || c["aud"] == nil ||
				c["scope"] != "openid profile email offline_access" {
				t.Errorf("access token claims %v", c)
			}
			if tok.TokenType != "bearer" && tok.TokenType != "Bearer" {
				t.Errorf("token_type %q", tok.TokenType)
			}

			// Userinfo: the approval's claims, filtered by scope.
			ui, err := r.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			var uc map[string]any
			ui.Claims(&uc)
			if uc["sub"] != "user-42" || uc["email"] != "ann@example.com" || uc["name"] != "Ann" || uc["phone_number"] != nil {
				t.Errorf("userinfo %v", uc)
			}

			// Refresh rotates; replaying the old refresh token fails and
			// revokes the family, including the new refresh token.
			old := tok.RefreshToken
			if old == "" {
				t.Fatal("no refresh token despite offline_access")
			}
			tok2, err := r.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: old, Expiry: time.Now().Add(-time.Hour)}).Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if tok2.RefreshToken == "" || tok2.RefreshToken == old || tok2.AccessToken == tok.AccessToken {
				t.Fatal("refresh did not rotate")
			}
			if rawID2, _ := tok2.Extra("id_token").(string); rawID2 == "" {
				t.Error("refresh with openid gave no new id_token")
			}
			if got := introspect(t, env, tok2.AccessToken, "", "")["active"]; got != true {
				t.Fatalf("new access token inactive before replay: %v", got)
			}
			_, err = r.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: old, Expiry: time.Now().Add(-time.Hour)}).Token()
			var re *oauth2.RetrieveError
			if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" {
				t.Fatalf("replayed refresh token: %v, want invalid_grant", err)
			}
			_, err = r.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
			if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" {
				t.Fatalf("refresh token of a replayed family still works: %v", err)
			}
			if got := introspect(t, env, tok2.AccessToken, "", "")["active"]; got != false {
				t.Errorf("access token of a replayed family still active: %v", got)
			}
		})
	}
}

func asRetrieveError(err error, re **oauth2.RetrieveError) bool {
	e, ok := err.(*oauth2.RetrieveError)
	if ok {
		*re = e
	}
	return ok
}

func TestUserinfoClaimsFollowGrantedScopes(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	r := newRP(t, env, env.WebClient("client_secret_basic"), oauth2.AuthStyleInHeader, "openid", "profile", "email")
	tok, _ := r.login(t, latchtest.NewBrowser(t), map[string]any{
		"user": "u1", "scopes": []string{"openid", "email"},
		"claims": map[string]any{"email": "u1@example.com", "name": "Hidden"},
	})
	ui, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	var uc map[string]any
	ui.Claims(&uc)
	if uc["email"] != "u1@example.com" || uc["name"] != nil {
		t.Errorf("userinfo %v: profile was not granted, so no name", uc)
	}
	if tok.RefreshToken != "" {
		t.Error("refresh token issued without offline_access")
	}
}

func TestIntrospectionAndRevocation(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	web := env.WebClient("client_secret_basic")
	other := env.WebClient("client_secret_basic")
	r := newRP(t, env, web, oauth2.AuthStyleInHeader, "openid", "offline_access")
	tok, _ := r.login(t, latchtest.NewBrowser(t), map[string]any{"user": "u7"})

	got := introspect(t, env, tok.AccessToken, web.ID, web.Secret)
	if got["active"] != true || got["client_id"] != web.ID || got["sub"] != "u7" || got["scope"] != "openid offline_access" {
		t.Errorf("owner's introspection %v", got)
	}
	if got := introspect(t, env, tok.AccessToken, other.ID, other.Secret); len(got) != 1 || got["active"] != false {
		t.Errorf("another client learned about the token: %v", got)
	}
	if got := introspect(t, env, tok.RefreshToken, web.ID, web.Secret); got["active"] != true || got["token_use"] != "refresh_token" {
		t.Errorf("refresh token introspection %v", got)
	}
	// A user's access token is never a credential at introspection.
	req, _ := http.NewRequest("POST", env.URL+"/oauth2/introspect", strings.NewReader("token="+url.QueryEscape(tok.AccessToken)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("introspection with a bearer token as credential: %d, want 401", resp.StatusCode)
	}

	// Revocation by another client does nothing; by the owner revokes.
	postForm(t, env.URL+"/oauth2/revoke", url.Values{"token": {tok.AccessToken}}, other.ID, other.Secret)
	if got := introspect(t, env, tok.AccessToken, "", ""); got["active"] != true {
		t.Fatalf("another client revoked the token: %v", got)
	}
	resp, _ = postForm(t, env.URL+"/oauth2/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}, web.ID, web.Secret)
	if resp.StatusCode != 200 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if got := introspect(t, env, tok.RefreshToken, "", ""); got["active"] != false {
		t.Errorf("revoked refresh token active: %v", got)
	}
	if got := introspect(t, env, tok.AccessToken, "", ""); got["active"] != false {
		t.Errorf("access token of a revoked grant active: %v", got)
	}
	if _, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok)); err == nil {
		t.Error("userinfo accepted a revoked access token")
	}
}

func TestDenyRedirectsAccessDeniedWithStateAndIss(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	r := newRP(t, env, env.WebClient("client_secret_basic"), oauth2.AuthStyleInHeader, "openid")
	b := latchtest.NewBrowser(t)
	id := env.StartAuthorize(b, r.conf.AuthCodeURL("xyz-state-123", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	loc := env.Resume(b, env.Deny(id))
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), "https://client.example/cb?") || q.Get("error") != "access_denied" ||
		q.Get("state") != "xyz-state-123" || q.Get("iss") != env.URL || q.Get("code") != "" {
		t.Errorf("deny redirect %s", loc)
	}
}

func TestClientCredentialsGrant(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: withScopes("api:read=Read the API")})
	m := env.CreateClient(clients.Metadata{ClientName: "worker", GrantTypes: []string{"client_credentials"}, Scope: "api:read"})
	cc := clientcredentials.Config{ClientID: m.ID, ClientSecret: m.Secret, TokenURL: env.URL + "/oauth2/token", Scopes: []string{"api:read"}}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatalf("client_credentials: %v", err)
	}
	_, c := jwtParts(t, tok.AccessToken)
	if c["sub"] != m.ID || c["client_id"] != m.ID || c["scope"] != "api:read" {
		t.Errorf("claims %v", c)
	}
	if tok.RefreshToken != "" {
		t.Error("client_credentials issued a refresh token")
	}
	if got := introspect(t, env, tok.AccessToken, m.ID, m.Secret); got["active"] != true {
		t.Errorf("introspection %v", got)
	}
	// No user behind client_credentials: user scopes are refused even for a
	// client registered with them.
	wide := env.CreateClient(clients.Metadata{ClientName: "wide", GrantTypes: []string{"client_credentials"}, Scope: "api:read openid offline_access"})
	for _, sc := range []string{"openid", "offline_access"} {
		resp, body := postForm(t, env.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {sc}}, wide.ID, wide.Secret)
		if resp.StatusCode != http.StatusBadRequest || body["error"] != "invalid_scope" {
			t.Errorf("client_credentials with %s: %d %v, want 400 invalid_scope", sc, resp.StatusCode, body)
		}
	}
	cc.ClientSecret = "wrong"
	if _, err := cc.Token(context.Background()); err == nil {
		t.Error("wrong secret accepted")
	}
}
