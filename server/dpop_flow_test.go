package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/dpop"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage"
)

func newDPoPKey(t *testing.T) *dpop.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &dpop.Signer{Key: k, Alg: jose.ES256}
}

func proof(t *testing.T, s *dpop.Signer, method, u, at, nonce string) string {
	t.Helper()
	p, err := s.Proof(method, u, at, nonce)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// send makes a request with optional DPoP proof and Authorization header
// and returns status, headers and the JSON body.
func send(t *testing.T, method, u string, form url.Values, headers map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func wantOAuthError(t *testing.T, what string, resp *http.Response, body map[string]any, status int, code string) {
	t.Helper()
	if resp.StatusCode != status || body["error"] != code {
		t.Fatalf("%s: got %d %v, want %d %s", what, resp.StatusCode, body, status, code)
	}
}

// TestDPoPPublicClientWholeFlow: a public client binds the code with
// dpop_jkt, exchanges it with a proof, refreshes with the same key and
// calls userinfo with DPoP; every wrong key or scheme is refused.
func TestDPoPPublicClientWholeFlow(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	c := env.NativeClient()
	key, other := newDPoPKey(t), newDPoPKey(t)
	jkt, _ := key.JKT()
	tokenURL, userinfoURL := env.URL+"/oauth2/token", env.URL+"/userinfo"
	redirect := "http://127.0.0.1:53127/callback"

	verifier := oauth2.GenerateVerifier()
	q := url.Values{
		"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {redirect},
		"scope": {"openid offline_access"}, "state": {"st-12345678"}, "dpop_jkt": {jkt},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
	loc := env.Authorize(latchtest.NewBrowser(t), env.URL+"/oauth2/authorize?"+q.Encode(), map[string]any{"user": "user-7"})
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: %s", loc)
	}
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"client_id": {c.ID}, "code_verifier": {verifier}}

	// The code is bound by dpop_jkt: no proof, or another key, is refused
	// and does not spend the code.
	resp, body := send(t, "POST", tokenURL, exchange, nil)
	wantOAuthError(t, "exchange without proof", resp, body, 400, "invalid_dpop_proof")
	resp, body = send(t, "POST", tokenURL, exchange, map[string]string{"DPoP": proof(t, other, "POST", tokenURL, "", "")})
	wantOAuthError(t, "exchange with another key", resp, body, 400, "invalid_dpop_proof")
	resp, body = send(t, "POST", tokenURL, exchange, map[string]string{"DPoP": proof(t, key, "GET", tokenURL, "", "")})
	wantOAuthError(t, "exchange with wrong htm", resp, body, 400, "invalid_dpop_proof")

	resp, body = send(t, "POST", tokenURL, exchange, map[string]string{"DPoP": proof(t, key, "POST", tokenURL, "", "")})
	if resp.StatusCode != 200 || body["token_type"] != "DPoP" {
		t.Fatalf("exchange: %d %v", resp.StatusCode, body)
	}
	at, rt := body["access_token"].(string), body["refresh_token"].(string)
	_, claims := jwtParts(t, at)
	if cnf, _ := claims["cnf"].(map[string]any); cnf["jkt"] != jkt {
		t.Fatalf("access token cnf %v, want jkt %s", claims["cnf"], jkt)
	}

	// Userinfo honours the binding (RFC 9449 §7).
	for _, tc := range []struct {
		name    string
		headers map[string]string
		code    string
		scheme  string
	}{
		{"as Bearer", map[string]string{"Authorization": "Bearer " + at}, "invalid_token", "DPoP "},
		{"DPoP without proof", map[string]string{"Authorization": "DPoP " + at}, "invalid_dpop_proof", "DPoP "},
		{"proof from another key", map[string]string{"Authorization": "DPoP " + at, "DPoP": proof(t, other, "GET", userinfoURL, at, "")}, "invalid_token", "DPoP "},
		{"proof without ath", map[string]string{"Authorization": "DPoP " + at, "DPoP": proof(t, key, "GET", userinfoURL, "", "")}, "invalid_dpop_proof", "DPoP "},
		{"proof for another token", map[string]string{"Authorization": "DPoP " + at, "DPoP": proof(t, key, "GET", userinfoURL, "other-token", "")}, "invalid_dpop_proof", "DPoP "},
		{"proof for the token endpoint", map[string]string{"Authorization": "DPoP " + at, "DPoP": proof(t, key, "GET", tokenURL, at, "")}, "invalid_dpop_proof", "DPoP "},
	} {
		t.Run("userinfo "+tc.name, func(t *testing.T) {
			resp, body := send(t, "GET", userinfoURL, nil, tc.headers)
			wantOAuthError(t, tc.name, resp, body, 401, tc.code)
			if h := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, tc.scheme) || !strings.Contains(h, `error="`+tc.code+`"`) {
				t.Fatalf("WWW-Authenticate %q", h)
			}
		})
	}
	good := proof(t, key, "GET", userinfoURL, at, "")
	resp, body = send(t, "GET", userinfoURL, nil, map[string]string{"Authorization": "DPoP " + at, "DPoP": good})
	if resp.StatusCode != 200 || body["sub"] != "user-7" {
		t.Fatalf("userinfo with DPoP: %d %v", resp.StatusCode, body)
	}
	resp, body = send(t, "GET", userinfoURL, nil, map[string]string{"Authorization": "DPoP " + at, "DPoP": good})
	wantOAuthError(t, "replayed userinfo proof", resp, body, 401, "invalid_dpop_proof")

	// Introspection reports the binding.
	in := introspect(t, env, at, "", "")
	if in["active"] != true || in["token_type"] != "DPoP" || in["cnf"].(map[string]any)["jkt"] != jkt {
		t.Fatalf("introspection %v", in)
	}

	// The public client's refresh token is bound to the same key.
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.ID}}
	resp, body = send(t, "POST", tokenURL, refresh, nil)
	wantOAuthError(t, "refresh without proof", resp, body, 400, "invalid_dpop_proof")
	resp, body = send(t, "POST", tokenURL, refresh, map[string]string{"DPoP": proof(t, other, "POST", tokenURL, "", "")})
	wantOAuthError(t, "refresh with another key", resp, body, 400, "invalid_dpop_proof")
	resp, body = send(t, "POST", tokenURL, refresh, map[string]string{"DPoP": proof(t, key, "POST", tokenURL, "", "")})
	if resp.StatusCode != 200 || body["token_type"] != "DPoP" {
		t.Fatalf("refresh: %d %v", resp.StatusCode, body)
	}
	at2 := body["access_token"].(string)
	if _, c2 := jwtParts(t, at2); c2["cnf"].(map[string]any)["jkt"] != jkt {
		t.Fatalf("refreshed token cnf %v", c2["cnf"])
	}
	resp, body = send(t, "GET", userinfoURL, nil, map[string]string{"Authorization": "DPoP " + at2, "DPoP": proof(t, key, "GET", userinfoURL, at2, "")})
	if resp.StatusCode != 200 {
		t.Fatalf("userinfo after refresh: %d %v", resp.StatusCode, body)
	}
}

// TestDPoPNonceAndRequiredClient: with nonces required the token endpoint
// answers use_dpop_nonce with a DPoP-Nonce header and accepts the retry; a
// client registered with dpop_bound_access_tokens cannot get a Bearer token.
func TestDPoPNonceAndRequiredClient(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: func(c *config.Config) { c.DPoP.NonceRequired = true }})
	c := env.RegisterClient(map[string]any{"client_name": "svc", "grant_types": []string{"client_credentials"},
		"scope": "profile", "dpop_bound_access_tokens": true})
	key := newDPoPKey(t)
	tokenURL := env.URL + "/oauth2/token"
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"profile"}}
	basic := func(h map[string]string) map[string]string {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
		h["Authorization"] = req.Header.Get("Authorization")
		return h
	}

	resp, body := send(t, "POST", tokenURL, form, basic(map[string]string{}))
	wantOAuthError(t, "dpop-bound client without proof", resp, body, 400, "invalid_dpop_proof")

	resp, body = send(t, "POST", tokenURL, form, basic(map[string]string{"DPoP": proof(t, key, "POST", tokenURL, "", "")}))
	wantOAuthError(t, "proof without nonce", resp, body, 400, "use_dpop_nonce")
	nonce := resp.Header.Get("DPoP-Nonce")
	if nonce == "" {
		t.Fatal("no DPoP-Nonce header with use_dpop_nonce")
	}
	resp, body = send(t, "POST", tokenURL, form, basic(map[string]string{"DPoP": proof(t, key, "POST", tokenURL, "", "stale-nonce")}))
	wantOAuthError(t, "proof with a wrong nonce", resp, body, 400, "use_dpop_nonce")

	resp, body = send(t, "POST", tokenURL, form, basic(map[string]string{"DPoP": proof(t, key, "POST", tokenURL, "", nonce)}))
	if resp.StatusCode != 200 || body["token_type"] != "DPoP" || resp.Header.Get("DPoP-Nonce") == "" {
		t.Fatalf("with nonce: %d %v", resp.StatusCode, body)
	}
	jkt, _ := key.JKT()
	if _, cl := jwtParts(t, body["access_token"].(string)); cl["cnf"].(map[string]any)["jkt"] != jkt {
		t.Fatalf("cnf %v", cl["cnf"])
	}
}

func setClient(t *testing.T, env *latchtest.Env, id string, edit func(*storage.Client)) {
	t.Helper()
	ctx := context.Background()
	sc, err := env.App.Store.Client(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	edit(sc)
	if err := env.App.Store.UpdateClient(ctx, sc); err != nil {
		t.Fatal(err)
	}
}

func TestDiscoveryAdvertisesDPoPAndPAR(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	resp, body := send(t, "GET", env.URL+"/.well-known/openid-configuration", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	algs, _ := body["dpop_signing_alg_values_supported"].([]any)
	if len(algs) == 0 || body["pushed_authorization_request_endpoint"] != env.URL+"/oauth2/par" ||
		body["require_pushed_authorization_requests"] != false {
		t.Fatalf("discovery %v", body)
	}
	for _, a := range algs {
		if a == "none" || strings.HasPrefix(a.(string), "HS") {
			t.Fatalf("advertised %v", a)
		}
	}
	idAlgs, _ := body["id_token_signing_alg_values_supported"].([]any)
	if len(idAlgs) != 2 || idAlgs[0] != "ES256" || idAlgs[1] != "RS256" {
		t.Fatalf("id_token algs %v", idAlgs)
	}
}
