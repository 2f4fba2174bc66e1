package clients_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/latchtest"
)

// rawAPI sends a raw body (for malformed JSON).
func rawAPI(t *testing.T, env *latchtest.Env, key, method, path, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, env.URL+path, bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// tokenWithSecret runs client_credentials and returns the status.
func tokenWithSecret(t *testing.T, env *latchtest.Env, id, secret string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", env.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func webMeta() map[string]any {
	return map[string]any{
		"client_name": "Photo app", "redirect_uris": []string{"https://photos.example/cb"},
		"grant_types": []string{"authorization_code", "refresh_token"}, "scope": "openid profile offline_access",
		"owner": "alice", "contacts": []string{"dev@photos.example"}, "logo_uri": "https://photos.example/logo.png",
	}
}

func TestCreateClient(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	status, out := env.API("POST", "/api/clients", webMeta())
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, out)
	}
	id, _ := out["client_id"].(string)
	if id == "" || out["client_secret"] == "" || out["client_secret"] == nil || out["client_secret_expires_at"] != float64(0) {
		t.Fatalf("create answer %v: want client_id, client_secret and client_secret_expires_at 0", out)
	}
	if out["client_name"] != "Photo app" || out["owner"] != "alice" || out["token_endpoint_auth_method"] != "client_secret_basic" {
		t.Errorf("create answer %v", out)
	}
	if rt, _ := out["response_types"].([]any); len(rt) != 1 || rt[0] != "code" {
		t.Errorf("response_types %v, want [code]", out["response_types"])
	}
	// The secret is shown only at creation.
	status, got := env.API("GET", "/api/clients/"+id, nil)
	if status != http.StatusOK || got["client_id"] != id || got["client_secret"] != nil {
		t.Errorf("read: %d %v (must not carry a secret)", status, got)
	}

	// Public clients get no secret; machine clients have no redirect URIs.
	status, pub := env.API("POST", "/api/clients", map[string]any{
		"client_name": "CLI", "redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none",
	})
	if status != http.StatusCreated || pub["client_secret"] != nil {
		t.Errorf("public client: %d %v, want no secret", status, pub)
	}
	status, m2m := env.API("POST", "/api/clients", map[string]any{
		"client_name": "Batch", "grant_types": []string{"client_credentials"}, "response_types": []string{}, "scope": "profile",
	})
	if status != http.StatusCreated || m2m["client_secret"] == nil {
		t.Fatalf("machine client: %d %v", status, m2m)
	}
	if s := tokenWithSecret(t, env, m2m["client_id"].(string), m2m["client_secret"].(string)); s != http.StatusOK {
		t.Errorf("machine client's token request: %d", s)
	}

	// jwks travels as an object and comes back as one.
	jwks := map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-256", "kid": "k1",
		"x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}}}
	status, pk := env.API("POST", "/api/clients", map[string]any{
		"client_name": "JWT client", "grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks,
	})
	if status != http.StatusCreated || pk["client_secret"] != nil {
		t.Fatalf("private_key_jwt client: %d %v", status, pk)
	}
	if keys, _ := pk["jwks"].(map[string]any)["keys"].([]any); len(keys) != 1 {
		t.Errorf("jwks answer %v", pk["jwks"])
	}
}

// TestClientSenderConstraintMetadata: the DPoP, PAR and algorithm settings
// are registered, shown (false too) and patched like the rest.
func TestClientSenderConstraintMetadata(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	_, plain := env.API("POST", "/api/clients", webMeta())
	if plain["dpop_bound_access_tokens"] != false || plain["require_pushed_authorization_requests"] != false {
		t.Errorf("unconstrained client must show both switches false: %v", plain)
	}

	m := webMeta()
	m["dpop_bound_access_tokens"], m["require_pushed_authorization_requests"], m["id_token_signed_response_alg"] = true, true, "RS256"
	status, out := env.API("POST", "/api/clients", m)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, out)
	}
	id := out["client_id"].(string)
	want := map[string]any{"dpop_bound_access_tokens": true, "require_pushed_authorization_requests": true, "id_token_signed_response_alg": "RS256"}
	check := func(step string, got map[string]any) {
		t.Helper()
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %v", step, k, got[k], v)
			}
		}
	}
	check("create", out)
	_, got := env.API("GET", "/api/clients/"+id, nil)
	check("read", got)
	_, list := env.API("GET", "/api/clients?owner=alice&limit=200", nil)
	listed := false
	for _, c := range list["clients"].([]any) {
		if c.(map[string]any)["client_id"] == id {
			listed = true
			check("list", c.(map[string]any))
		}
	}
	if !listed {
		t.Errorf("client %s not listed: %v", id, list)
	}

	// A patch that does not name them keeps them.
	status, out = env.API("PATCH", "/api/clients/"+id, map[string]any{"client_name": "Photos 2"})
	if status != http.StatusOK {
		t.Fatalf("patch: %d %v", status, out)
	}
	check("patch of another field", out)

	// A patch that names them changes them, and is validated.
	status, out = env.API("PATCH", "/api/clients/"+id, map[string]any{"dpop_bound_access_tokens": false, "id_token_signed_response_alg": ""})
	want = map[string]any{"dpop_bound_access_tokens": false, "require_pushed_authorization_requests": true, "id_token_signed_response_alg": nil}
	if status != http.StatusOK {
		t.Fatalf("patch: %d %v", status, out)
	}
	check("patch", out)
	for _, body := range []map[string]any{{"id_token_signed_response_alg": "PS256"}, {"token_endpoint_auth_signing_alg": "ES256"}} {
		if status, out := env.API("PATCH", "/api/clients/"+id, body); status != http.StatusBadRequest || out["error"] != "invalid_client_metadata" {
			t.Errorf("patch %v: %d %v, want 400 invalid_client_metadata", body, status, out)
		}
	}
	_, got = env.API("GET", "/api/clients/"+id, nil)
	check("read after refused patches", got)

	// private_key_jwt clients may pin their assertion algorithm.
	_, pk := env.API("POST", "/api/clients", map[string]any{"client_name": "JWT", "grant_types": []string{"client_credentials"},
		"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://a.example/jwks", "token_endpoint_auth_signing_alg": "PS256"})
	if pk["token_endpoint_auth_signing_alg"] != "PS256" {
		t.Errorf("private_key_jwt client with an assertion alg: %v", pk)
	}
	status, out = env.API("PATCH", "/api/clients/"+pk["client_id"].(string), map[string]any{"token_endpoint_auth_signing_alg": "ES384"})
	if status != http.StatusOK || out["token_endpoint_auth_signing_alg"] != "ES384" {
		t.Errorf("patch assertion alg: %d %v", status, out)
	}
}

func TestCreateClientValidation(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	code := map[string]any{"client_name": "x", "redirect_uris": []string{"https://a.example/cb"}}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range code {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	privJWKS := map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-256",
		"x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
		"d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}}}
	cases := []struct {
		name  string
		body  map[string]any
		error string
		field string
	}{
		{"http redirect to a public host", with("redirect_uris", []string{"http://a.example/cb"}), "invalid_redirect_uri", "loopback"},
		{"localhost for a web application", map[string]any{"redirect_uris": []string{"http://localhost:8080/cb"}, "application_type": "web"}, "invalid_redirect_uri", "web application"},
		{"https for a native application", map[string]any{"redirect_uris": []string{"https://a.example/cb"}, "application_type": "native"}, "invalid_redirect_uri", "native application"},
		{"private-use scheme for a web application", map[string]any{"redirect_uris": []string{"com.example.app:/cb"}, "application_type": "web"}, "invalid_redirect_uri", "web application"},
		{"unknown application type", with("application_type", "desktop"), "invalid_client_metadata", "application_type"},
		{"http on a public host", with("redirect_uris", []string{"http://a.example/cb"}), "invalid_redirect_uri", "loopback"},
		{"cors origin with a path", with("allowed_cors_origins", []string{"https://spa.example/app"}), "invalid_client_metadata", "allowed_cors_origins"},
		{"cors origin with a trailing slash", with("allowed_cors_origins", []string{"https://spa.example/"}), "invalid_client_metadata", "allowed_cors_origins"},
		{"cors origin wildcard", with("allowed_cors_origins", []string{"*"}), "invalid_client_metadata", "allowed_cors_origins"},
		{"cors origin over http", with("allowed_cors_origins", []string{"http://spa.example"}), "invalid_client_metadata", "allowed_cors_origins"},
		{"cors origin default port", with("allowed_cors_origins", []string{"https://spa.example:443"}), "invalid_client_metadata", "allowed_cors_origins"},
		{"cors origin uppercase", with("allowed_cors_origins", []string{"https://SPA.example"}), "invalid_client_metadata", "allowed_cors_origins"},
		{"negative reuse interval", with("refresh_reuse_interval", -1), "invalid_client_metadata", "refresh_reuse_interval"},
		{"huge reuse interval", with("refresh_reuse_interval", 86400), "invalid_client_metadata", "refresh_reuse_interval"},
		{"fragment", with("redirect_uris", []string{"https://a.example/cb#x"}), "invalid_redirect_uri", "fragment"},
		{"wildcard", with("redirect_uris", []string{"https://*.a.example/cb"}), "invalid_redirect_uri", "wildcard"},
		{"relative", with("redirect_uris", []string{"/cb"}), "invalid_redirect_uri", "absolute"},
		{"custom scheme without a dot", with("redirect_uris", []string{"myapp:/cb"}), "invalid_redirect_uri", "reverse domain"},
		{"no redirect for code", with("redirect_uris", []string{}), "invalid_redirect_uri", "at least one"},
		{"redirect for a machine client", with("grant_types", []string{"client_credentials"}), "invalid_redirect_uri", "only clients using authorization_code"},
		{"unknown grant", with("grant_types", []string{"password"}), "invalid_client_metadata", "grant_types"},
		{"no grant", with("grant_types", []string{}), "invalid_client_metadata", "grant_types"},
		{"refresh without code", map[string]any{"grant_types": []string{"client_credentials", "refresh_token"}}, "invalid_client_metadata", "refresh_token"},
		{"token response type", with("response_types", []string{"token"}), "invalid_client_metadata", "response_types"},
		{"code grant without code response", with("response_types", []string{}), "invalid_client_metadata", "response_types"},
		{"public client_credentials", map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "none"}, "invalid_client_metadata", "confidential"},
		{"unknown auth method", with("token_endpoint_auth_method", "client_secret_jwt"), "invalid_client_metadata", "token_endpoint_auth_method"},
		{"private_key_jwt without keys", with("token_endpoint_auth_method", "private_key_jwt"), "invalid_client_metadata", "jwks"},
		{"jwks not an object", with("jwks", []string{"x"}), "invalid_client_metadata", "jwks"},
		{"jwks and jwks_uri", with("jwks_uri", "https://a.example/jwks"), "invalid_client_metadata", "jwks"},
		{"private key in jwks", with("jwks", privJWKS), "invalid_client_metadata", "private key"},
		{"unknown scope", with("scope", "openid admin"), "invalid_client_metadata", "scope"},
		{"http logo", with("logo_uri", "http://a.example/l.png"), "invalid_client_metadata", "logo_uri"},
		{"client_id chosen", with("client_id", "mine"), "invalid_client_metadata", "client_id"},
		{"long name", with("client_name", strings.Repeat("n", 201)), "invalid_client_metadata", "client_name"},
		{"empty contact", with("contacts", []string{""}), "invalid_client_metadata", "contacts"},
		{"long owner", with("owner", strings.Repeat("o", 256)), "invalid_client_metadata", "owner"},
		{"unsupported id token alg", with("id_token_signed_response_alg", "HS256"), "invalid_client_metadata", "id_token_signed_response_alg"},
		{"unsigned id tokens", with("id_token_signed_response_alg", "none"), "invalid_client_metadata", "id_token_signed_response_alg"},
		{"assertion alg without private_key_jwt", with("token_endpoint_auth_signing_alg", "ES256"), "invalid_client_metadata", "token_endpoint_auth_signing_alg"},
		{"assertion alg not advertised", map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt",
			"jwks_uri": "https://a.example/jwks", "token_endpoint_auth_signing_alg": "HS256"}, "invalid_client_metadata", "token_endpoint_auth_signing_alg"},
		{"dpop flag not a boolean", with("dpop_bound_access_tokens", "yes"), "invalid_request", "wrong type"},
		{"par flag not a boolean", with("require_pushed_authorization_requests", 1), "invalid_request", "wrong type"},
		{"unknown field", with("redirect_uri", "https://a.example/cb"), "invalid_request", "unknown field"},
		{"wrong type", with("redirect_uris", "https://a.example/cb"), "invalid_request", "wrong type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "jwks and jwks_uri" {
				tc.body["jwks"] = map[string]any{"keys": []any{}}
			}
			status, out := env.API("POST", "/api/clients", tc.body)
			desc, _ := out["error_description"].(string)
			if status != http.StatusBadRequest || out["error"] != tc.error || !strings.Contains(desc, tc.field) {
				t.Errorf("%d %v, want 400 %s mentioning %q", status, out, tc.error, tc.field)
			}
		})
	}
	if s := rawAPI(t, env, latchtest.APIKey, "POST", "/api/clients", `{"client_name": `); s != http.StatusBadRequest {
		t.Errorf("malformed JSON: %d, want 400", s)
	}
}

func TestClientsRequireAPIKey(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	c := env.WebClient("client_secret_basic")
	for _, r := range []struct{ method, path string }{
		{"POST", "/api/clients"}, {"GET", "/api/clients"}, {"GET", "/api/clients/" + c.ID},
		{"PATCH", "/api/clients/" + c.ID}, {"DELETE", "/api/clients/" + c.ID}, {"POST", "/api/clients/" + c.ID + "/secret"},
		{"GET", "/api/users/u/authorizations"}, {"DELETE", "/api/users/u/authorizations/" + c.ID}, {"GET", "/api/audit"},
	} {
		for _, key := range []string{"", "latch_wrong"} {
			status, out := env.APIWithKey(key, r.method, r.path, map[string]any{})
			if status != http.StatusUnauthorized || out["error"] != "unauthorized" || out["error_description"] == nil {
				t.Errorf("%s %s with key %q: %d %v, want 401 unauthorized", r.method, r.path, key, status, out)
			}
		}
	}
	if _, err := env.App.Clients().Get(t.Context(), c.ID); err != nil {
		t.Errorf("client gone after unauthorised DELETE: %v", err)
	}
}

func TestUnknownClient404(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	for _, r := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/clients/nope", nil}, {"PATCH", "/api/clients/nope", map[string]any{"client_name": "x"}},
		{"DELETE", "/api/clients/nope", nil}, {"POST", "/api/clients/nope/secret", nil},
		{"DELETE", "/api/users/u/authorizations/nope", nil},
	} {
		status, out := env.API(r.method, r.path, r.body)
		if status != http.StatusNotFound || out["error"] != "not_found" {
			t.Errorf("%s %s: %d %v, want 404 not_found", r.method, r.path, status, out)
		}
	}
}

func TestListClientsPaginatesAndFilters(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	for i := range 5 {
		m := webMeta()
		m["owner"] = []string{"alice", "bob"}[i%2]
		if s, out := env.API("POST", "/api/clients", m); s != http.StatusCreated {
			t.Fatalf("create: %d %v", s, out)
		}
	}
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		path := "/api/clients?limit=2"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		status, out := env.API("GET", path, nil)
		if status != http.StatusOK {
			t.Fatalf("list: %d %v", status, out)
		}
		pages++
		list := out["clients"].([]any)
		if len(list) > 2 {
			t.Fatalf("page of %d with limit 2", len(list))
		}
		for _, c := range list {
			cm := c.(map[string]any)
			if cm["client_secret"] != nil {
				t.Error("list shows a secret")
			}
			seen[cm["client_id"].(string)] = true
		}
		cursor, _ = out["next_cursor"].(string)
		if cursor == "" {
			break
		}
	}
	// 5 created here plus the bootstrap demo client.
	if len(seen) != 6 || pages != 3 {
		t.Errorf("saw %d clients in %d pages, want 6 in 3", len(seen), pages)
	}
	status, out := env.API("GET", "/api/clients?owner=bob", nil)
	if status != http.StatusOK || len(out["clients"].([]any)) != 2 || out["next_cursor"] != "" {
		t.Errorf("owner=bob: %d %v, want 2 clients", status, out)
	}
	for _, bad := range []string{"limit=0", "limit=201", "limit=x", "cursor=%25%25"} {
		if status, out := env.API("GET", "/api/clients?"+bad, nil); status != http.StatusBadRequest || out["error"] != "invalid_request" {
			t.Errorf("%s: %d %v, want 400", bad, status, out)
		}
	}
}

func TestPatchClient(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	_, created := env.API("POST", "/api/clients", webMeta())
	id := created["client_id"].(string)
	secret := created["client_secret"].(string)

	status, out := env.API("PATCH", "/api/clients/"+id, map[string]any{
		"client_name": "Photos 2", "redirect_uris": []string{"https://photos.example/cb2"},
	})
	if status != http.StatusOK || out["client_name"] != "Photos 2" || out["owner"] != "alice" || out["scope"] != "openid profile offline_access" {
		t.Fatalf("patch: %d %v (unnamed fields must stay)", status, out)
	}
	if r := out["redirect_uris"].([]any); len(r) != 1 || r[0] != "https://photos.example/cb2" {
		t.Errorf("redirect_uris %v", r)
	}
	c, err := env.App.Clients().Get(t.Context(), id)
	if err != nil || !env.App.Hasher.Equal("client", c.SecretHash, secret) {
		t.Errorf("patch lost the secret: %v", err)
	}
	for _, tc := range []struct {
		body  map[string]any
		error string
	}{
		{map[string]any{"redirect_uris": []string{"http://evil.example/cb"}}, "invalid_redirect_uri"},
		{map[string]any{"token_endpoint_auth_method": "none"}, "invalid_client_metadata"},
		{map[string]any{"client_id": "other"}, "invalid_client_metadata"},
		{map[string]any{"scope": "nope"}, "invalid_client_metadata"},
		{map[string]any{"secret": "x"}, "invalid_request"},
	} {
		if status, out := env.API("PATCH", "/api/clients/"+id, tc.body); status != http.StatusBadRequest || out["error"] != tc.error {
			t.Errorf("patch %v: %d %v, want 400 %s", tc.body, status, out, tc.error)
		}
	}
	if s := rawAPI(t, env, latchtest.APIKey, "PATCH", "/api/clients/"+id, `{"client_name": 1`); s != http.StatusBadRequest {
		t.Errorf("malformed patch: %d", s)
	}
}

func TestRotateSecret(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	env := latchtest.Start(t, latchtest.Options{Now: func() time.Time { return clock() }})
	_, m2m := env.API("POST", "/api/clients", map[string]any{"client_name": "Batch", "grant_types": []string{"client_credentials"}})
	id, first := m2m["client_id"].(string), m2m["client_secret"].(string)

	// Without a grace period the old secret stops working at once.
	status, out := env.API("POST", "/api/clients/"+id+"/secret", nil)
	if status != http.StatusOK || out["client_secret"] == nil || out["client_secret"] == first || out["previous_secret_valid_until"] != nil {
		t.Fatalf("rotate: %d %v", status, out)
	}
	second := out["client_secret"].(string)
	if tokenWithSecret(t, env, id, first) != http.StatusUnauthorized {
		t.Error("old secret still works after rotation without grace")
	}
	if tokenWithSecret(t, env, id, second) != http.StatusOK {
		t.Error("new secret does not work")
	}

	// With one, both work until it ends; then only the new one.
	status, out = env.API("POST", "/api/clients/"+id+"/secret", map[string]any{"grace_period": "1h"})
	if status != http.StatusOK || out["previous_secret_valid_until"] == nil {
		t.Fatalf("rotate with grace: %d %v", status, out)
	}
	third := out["client_secret"].(string)
	if tokenWithSecret(t, env, id, second) != http.StatusOK || tokenWithSecret(t, env, id, third) != http.StatusOK {
		t.Fatal("during the grace period both secrets must work")
	}
	if tokenWithSecret(t, env, id, first) != http.StatusUnauthorized {
		t.Error("a secret from two rotations ago works")
	}
	later := now.Add(61 * time.Minute)
	clock = func() time.Time { return later }
	if tokenWithSecret(t, env, id, second) != http.StatusUnauthorized {
		t.Error("old secret works after the grace period")
	}
	if tokenWithSecret(t, env, id, third) != http.StatusOK {
		t.Error("new secret stopped working")
	}

	for _, body := range []map[string]any{{"grace_period": "soon"}, {"grace_period": "-1h"}, {"grace_period": "200h"}, {"grace": "1h"}} {
		if status, out := env.API("POST", "/api/clients/"+id+"/secret", body); status != http.StatusBadRequest {
			t.Errorf("rotate %v: %d %v, want 400", body, status, out)
		}
	}
	_, pub := env.API("POST", "/api/clients", map[string]any{"client_name": "CLI", "redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none"})
	if status, out := env.API("POST", "/api/clients/"+pub["client_id"].(string)+"/secret", nil); status != http.StatusBadRequest || out["error"] != "invalid_client_metadata" {
		t.Errorf("rotating a public client's secret: %d %v, want 400", status, out)
	}
}

func TestDeleteClientRevokesTokens(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	_, m2m := env.API("POST", "/api/clients", map[string]any{"client_name": "Batch", "grant_types": []string{"client_credentials"}})
	id, sec := m2m["client_id"].(string), m2m["client_secret"].(string)
	tok := clientCredentialsToken(t, env, id, sec)
	if !introspectActive(t, env, tok) {
		t.Fatal("token inactive before delete")
	}
	status, _ := env.API("DELETE", "/api/clients/"+id, nil)
	if status != http.StatusNoContent {
		t.Fatalf("delete: %d, want 204", status)
	}
	if introspectActive(t, env, tok) {
		t.Error("token of a deleted client is still active")
	}
	if status, _ := env.API("GET", "/api/clients/"+id, nil); status != http.StatusNotFound {
		t.Errorf("read after delete: %d, want 404", status)
	}
	if status, _ := env.API("DELETE", "/api/clients/"+id, nil); status != http.StatusNotFound {
		t.Errorf("second delete: %d, want 404", status)
	}
}

// TestRealClientMetadata: allowed_cors_origins, application_type and
// refresh_reuse_interval are stored, shown and patched; a missing
// application_type is inferred from the redirect URIs, and `localhost`
// loopback redirects register (MCP and CLI clients use them).
func TestRealClientMetadata(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	status, out := env.API("POST", "/api/clients", map[string]any{"client_name": "SPA",
		"redirect_uris": []string{"https://spa.example/cb"}, "token_endpoint_auth_method": "none",
		"allowed_cors_origins": []string{"https://spa.example", "http://localhost:5173"}, "refresh_reuse_interval": 30,
		"grant_types": []string{"authorization_code", "refresh_token"}})
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, out)
	}
	if out["application_type"] != "web" || out["refresh_reuse_interval"] != float64(30) ||
		fmt.Sprint(out["allowed_cors_origins"]) != "[https://spa.example http://localhost:5173]" {
		t.Errorf("created %v", out)
	}
	id := out["client_id"].(string)
	status, out = env.API("PATCH", "/api/clients/"+id, map[string]any{"allowed_cors_origins": []string{"https://other.example"}, "refresh_reuse_interval": 0})
	if status != http.StatusOK || fmt.Sprint(out["allowed_cors_origins"]) != "[https://other.example]" || out["refresh_reuse_interval"] != nil {
		t.Errorf("patch: %d %v", status, out)
	}
	for _, tc := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"redirect_uris": []string{"http://localhost/callback"}, "token_endpoint_auth_method": "none"}, "native"},
		{map[string]any{"redirect_uris": []string{"com.example.app:/cb", "http://[::1]/cb"}, "application_type": "native"}, "native"},
		{map[string]any{"redirect_uris": []string{"https://a.example/cb", "http://127.0.0.1/cb"}}, ""},
	} {
		status, out := env.API("POST", "/api/clients", tc.body)
		if got, _ := out["application_type"].(string); status != http.StatusCreated || got != tc.want {
			t.Errorf("%v: %d %v, want application_type %q", tc.body, status, out, tc.want)
		}
	}
}

// A client's audience decides who accepts and may introspect its tokens, so
// it may name only this server's issuer (or, later, a registered resource):
// never another client or an API Latch does not know.
func TestClientAudienceRestricted(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	machine := func(aud ...string) map[string]any {
		return map[string]any{"client_name": "m", "grant_types": []string{"client_credentials"}, "audience": aud}
	}
	victim := env.RegisterClient(machine())
	status, out := env.API("POST", "/api/clients", machine(env.URL))
	if status != http.StatusCreated {
		t.Fatalf("audience = issuer: %d %v", status, out)
	}
	id := out["client_id"].(string)
	for _, aud := range []string{victim.ID, "https://api.other.example", env.URL + "/", ""} {
		status, out := env.API("POST", "/api/clients", machine(env.URL, aud))
		desc, _ := out["error_description"].(string)
		if status != http.StatusBadRequest || out["error"] != "invalid_client_metadata" || !strings.HasPrefix(desc, "audience") {
			t.Errorf("register with audience %q: %d %v, want 400 invalid_client_metadata naming audience", aud, status, out)
		}
		status, out = env.API("PATCH", "/api/clients/"+id, map[string]any{"audience": []string{aud}})
		if status != http.StatusBadRequest || out["error"] != "invalid_client_metadata" {
			t.Errorf("patch audience to %q: %d %v, want 400 invalid_client_metadata", aud, status, out)
		}
	}
	if _, got := env.API("GET", "/api/clients/"+id, nil); len(got["audience"].([]any)) != 1 || got["audience"].([]any)[0] != env.URL {
		t.Errorf("a refused PATCH changed the audience: %v", got["audience"])
	}
}
