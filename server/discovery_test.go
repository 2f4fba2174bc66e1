package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/latchhq/latch/latchtest"
)

// The discovery document is the contract strict clients read; pin it whole.
func TestDiscoveryDocumentExactly(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: withScopes("api:read=Read the API")})
	iss := env.URL
	authMethods := []any{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
	want := map[string]any{
		"issuer":                                           iss,
		"authorization_endpoint":                           iss + "/oauth2/authorize",
		"token_endpoint":                                   iss + "/oauth2/token",
		"userinfo_endpoint":                                iss + "/userinfo",
		"jwks_uri":                                         iss + "/.well-known/jwks.json",
		"revocation_endpoint":                              iss + "/oauth2/revoke",
		"introspection_endpoint":                           iss + "/oauth2/introspect",
		"scopes_supported":                                 []any{"openid", "profile", "email", "offline_access", "api:read"},
		"response_types_supported":                         []any{"code"},
		"response_modes_supported":                         []any{"query", "form_post"},
		"grant_types_supported":                            []any{"authorization_code", "refresh_token", "client_credentials"},
		"subject_types_supported":                          []any{"public"},
		"id_token_signing_alg_values_supported":            []any{"ES256", "RS256"},
		"dpop_signing_alg_values_supported":                []any{"ES256", "ES384", "EdDSA", "RS256", "PS256"},
		"pushed_authorization_request_endpoint":            iss + "/oauth2/par",
		"require_pushed_authorization_requests":            false,
		"token_endpoint_auth_methods_supported":            authMethods,
		"token_endpoint_auth_signing_alg_values_supported": []any{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"},
		"revocation_endpoint_auth_methods_supported":       authMethods,
		"introspection_endpoint_auth_methods_supported":    []any{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		"code_challenge_methods_supported":                 []any{"S256"},
		"prompt_values_supported":                          []any{"none", "login", "consent"},
		"claims_parameter_supported":                       false,
		"request_parameter_supported":                      false,
		"request_uri_parameter_supported":                  false,
		"authorization_response_iss_parameter_supported":   true,
		"end_session_endpoint":                             iss + "/oauth2/logout",
		"backchannel_logout_supported":                     true,
		"backchannel_logout_session_supported":             true,
		"client_id_metadata_document_supported":            true,
	}
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		resp, body := latchtest.NewBrowser(t).Get(env.URL + path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		claims, _ := got["claims_supported"].([]any)
		for _, c := range []any{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "email", "name", "sid"} {
			if !contains(claims, c) {
				t.Errorf("%s: claims_supported lacks %v", path, c)
			}
		}
		delete(got, "claims_supported")
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", path, d)
		}
	}
}

func contains(list []any, v any) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func TestJWKSPublishesTheSigningKeyWithKid(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	resp, body := latchtest.NewBrowser(t).Get(env.URL + "/.well-known/jwks.json")
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil || resp.StatusCode != 200 {
		t.Fatalf("jwks: %d %v", resp.StatusCode, err)
	}
	// One key per supported algorithm, made at start (docs/postgres.md).
	if len(set.Keys) != 2 {
		t.Fatalf("want an ES256 and an RS256 key, got %v", set.Keys)
	}
	for _, k := range set.Keys {
		ec := k["kty"] == "EC" && k["crv"] == "P-256" && k["alg"] == "ES256"
		rsa := k["kty"] == "RSA" && k["alg"] == "RS256"
		if !(ec || rsa) || k["use"] != "sig" || k["kid"] == "" || k["d"] != nil || k["p"] != nil {
			t.Errorf("jwk %v: want a public P-256 ES256 or RSA RS256 signing key with kid", k)
		}
	}
}

func TestSafeDefaults(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: nil})
	b := latchtest.NewBrowser(t)
	resp, _ := b.Get(env.URL + "/health/alive")
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	if resp, _ := b.Get(env.URL + "/health/ready"); resp.StatusCode != 200 {
		t.Errorf("ready: %d", resp.StatusCode)
	}
	if resp, body := b.Get(env.URL + "/metrics"); resp.StatusCode != 200 || !strings.Contains(string(body), "latch_http_requests_total") {
		t.Errorf("metrics: %d", resp.StatusCode)
	}
	// API answers are never cached.
	o := apiOutcome(t, env, latchtest.APIKey, "GET", "/api/auth_session/nope", "")
	if o.header.Get("Cache-Control") != "no-store" {
		t.Errorf("API Cache-Control = %q", o.header.Get("Cache-Control"))
	}
	// Bodies are limited.
	big := strings.Repeat("a", int(env.Config.HTTP.MaxBodyBytes)+10)
	o = apiOutcome(t, env, latchtest.APIKey, "POST", "/api/auth_session/x/approve", `{"user":"`+big+`"}`)
	if o.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", o.status)
	}
	// Unknown routes answer JSON errors too.
	if o := apiOutcome(t, env, latchtest.APIKey, "GET", "/no/such/route", ""); o.status != 404 || o.code != "not_found" {
		t.Errorf("unknown route: %d %q", o.status, o.code)
	}
}
