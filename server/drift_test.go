package server_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
)

// discoveryDocument fetches env's OpenID Connect discovery document.
func discoveryDocument(t *testing.T, env *latchtest.Env) map[string]any {
	t.Helper()
	resp, body := latchtest.NewBrowser(t).Get(env.URL + "/.well-known/openid-configuration")
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery: %d %v", resp.StatusCode, err)
	}
	return doc
}

// TestDiscoveryAndRoutesAgree: every endpoint discovery names is served
// (a request to it reaches a route), and every public protocol route is
// named in discovery unless listed here with the reason it is not. Route
// table and discovery are built in different files; this is what keeps
// them telling the same story.
func TestDiscoveryAndRoutesAgree(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: func(c *config.Config) { c.Registration = config.RegistrationOpen }})
	doc := discoveryDocument(t, env)
	advertised := map[string]string{} // path -> metadata member
	for member, v := range doc {
		s, ok := v.(string)
		if !ok || member == "issuer" || !(strings.HasSuffix(member, "_endpoint") || strings.HasSuffix(member, "_uri")) {
			continue
		}
		if !strings.HasPrefix(s, env.URL+"/") {
			t.Errorf("%s = %q is not under the issuer %s", member, s, env.URL)
			continue
		}
		advertised[strings.TrimPrefix(s, env.URL)] = member
	}
	// Every endpoint member of the document is checked, and the list is
	// not empty by accident.
	for _, member := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
		"revocation_endpoint", "introspection_endpoint", "pushed_authorization_request_endpoint",
		"end_session_endpoint", "registration_endpoint"} {
		if !slices.Contains(mapValues(advertised), member) {
			t.Errorf("discovery has no %s", member)
		}
	}

	// Served: echo answers 404 only for a path no route has (a route
	// without the method answers 405).
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, member := range advertised {
		resp, err := client.Get(env.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			t.Errorf("%s %s: discovery names it, the router does not serve it (404)", member, path)
		}
	}

	// Named: the public protocol routes discovery must announce.
	notAdvertised := map[string]string{
		// The discovery documents name the others, not themselves.
		"/.well-known/openid-configuration":       "discovery itself",
		"/.well-known/oauth-authorization-server": "discovery itself",
		// Where the browser comes back after the host app's decision: a
		// link Latch hands out, not an endpoint for clients.
		"/oauth2/authorize/resume": "approval's return link",
		// RFC 7592: each client learns its own URL as
		// registration_client_uri.
		"/oauth2/register/:client_id": "registration_client_uri",
	}
	var unnamed []string
	for _, r := range env.Server.Echo().Routes() {
		if r.Method == echo.RouteNotFound || !(strings.HasPrefix(r.Path, "/oauth2/") || strings.HasPrefix(r.Path, "/.well-known/") || r.Path == "/userinfo") {
			continue
		}
		if _, ok := advertised[r.Path]; ok {
			continue
		}
		if _, ok := notAdvertised[r.Path]; !ok && !slices.Contains(unnamed, r.Path) {
			unnamed = append(unnamed, r.Path)
		}
	}
	sort.Strings(unnamed)
	for _, p := range unnamed {
		t.Errorf("route %s is served but discovery does not name it (add it to the document, or to notAdvertised with the reason)", p)
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestClientValidationAcceptsWhatDiscoveryAdvertises: a client may
// register a grant type, response type, authentication method or algorithm
// exactly when discovery advertises it. A value accepted but not
// advertised is one no client can discover; one advertised but refused is
// a promise the server breaks at registration. The candidates are the
// registered IANA values plus whatever discovery lists.
func TestClientValidationAcceptsWhatDiscoveryAdvertises(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	doc := discoveryDocument(t, env)
	jwks := map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-256", "kid": "k1",
		"x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}}}
	// web is a client valid in every respect but the one field under test.
	web := func(field string, v any) map[string]any {
		m := map[string]any{"client_name": "Drift", "redirect_uris": []string{"https://client.example/cb"},
			"grant_types": []string{"authorization_code"}, "response_types": []string{"code"}}
		m[field] = v
		return m
	}
	algs := []string{"none", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512",
		"PS256", "PS384", "PS512", "EdDSA", "ES256K"}
	cases := []struct {
		member     string // discovery metadata
		field      string // client metadata it governs
		candidates []string
		body       func(v string) map[string]any
	}{
		{"grant_types_supported", "grant_types",
			[]string{"authorization_code", "implicit", "password", "client_credentials", "refresh_token",
				"urn:ietf:params:oauth:grant-type:jwt-bearer", "urn:ietf:params:oauth:grant-type:saml2-bearer",
				"urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:token-exchange",
				"urn:openid:params:grant-type:ciba"},
			// With authorization_code, so every grant's companion rules
			// (refresh_token goes with a code grant) are met.
			func(v string) map[string]any {
				return web("grant_types", slices.Compact([]string{"authorization_code", v}))
			}},
		{"response_types_supported", "response_types",
			[]string{"code", "token", "id_token", "code token", "code id_token", "id_token token", "code id_token token", "none"},
			func(v string) map[string]any { return web("response_types", []string{v}) }},
		{"token_endpoint_auth_methods_supported", "token_endpoint_auth_method",
			[]string{"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none",
				"tls_client_auth", "self_signed_tls_client_auth"},
			func(v string) map[string]any {
				m := web("token_endpoint_auth_method", v)
				if strings.HasSuffix(v, "_jwt") {
					m["jwks"] = jwks
				}
				return m
			}},
		{"token_endpoint_auth_signing_alg_values_supported", "token_endpoint_auth_signing_alg", algs,
			func(v string) map[string]any {
				m := web("token_endpoint_auth_signing_alg", v)
				m["token_endpoint_auth_method"], m["jwks"] = "private_key_jwt", jwks
				return m
			}},
		{"id_token_signing_alg_values_supported", "id_token_signed_response_alg", algs,
			func(v string) map[string]any { return web("id_token_signed_response_alg", v) }},
	}
	for _, tc := range cases {
		var advertised []string
		for _, v := range doc[tc.member].([]any) {
			advertised = append(advertised, v.(string))
		}
		if len(advertised) == 0 {
			t.Fatalf("discovery advertises no %s", tc.member)
		}
		for _, v := range append(slices.Clone(tc.candidates), advertised...) {
			status, out := env.API("POST", "/api/clients", tc.body(v))
			accepted := status == http.StatusCreated
			switch want := slices.Contains(advertised, v); {
			case accepted && !want:
				t.Errorf("%s %q: client validation accepts it, discovery's %s does not list it", tc.field, v, tc.member)
			case !accepted && want:
				t.Errorf("%s %q: discovery's %s lists it, client validation refuses it: %d %v", tc.field, v, tc.member, status, out)
			case !accepted && !strings.HasPrefix(out["error_description"].(string), tc.field+":"):
				t.Errorf("%s %q refused for another reason (%v): the case does not test what it says", tc.field, v, out)
			}
		}
	}
}
