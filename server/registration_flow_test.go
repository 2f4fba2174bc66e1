package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage/conformance"
)

// register calls the registration endpoint (RFC 7591 / 7592) with an
// optional bearer token.
func register(t *testing.T, method, u, bearer string, body any) (*http.Response, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func withRegistration(mode string, extra func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		c.Registration = mode
		if extra != nil {
			extra(c)
		}
	}
}

func nativeMetadata() map[string]any {
	return map[string]any{"client_name": "Agent", "redirect_uris": []string{"http://127.0.0.1/callback"},
		"grant_types": []string{"authorization_code", "refresh_token"}, "token_endpoint_auth_method": "none",
		"software_id": "ignored-unknown-member"}
}

func discoveryOf(t *testing.T, env *latchtest.Env) map[string]any {
	_, body := latchtest.NewBrowser(t).Get(env.URL + "/.well-known/openid-configuration")
	var m map[string]any
	json.Unmarshal(body, &m)
	return m
}

// TestRegistrationOff: the default; 403 and nothing in discovery.
func TestRegistrationOff(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	if resp, out := register(t, "POST", env.URL+"/oauth2/register", "", nativeMetadata()); resp.StatusCode != 403 || out["error"] == nil {
		t.Fatalf("register while off: %d %v", resp.StatusCode, out)
	}
	if resp, _ := register(t, "GET", env.URL+"/oauth2/register/anything", "token", nil); resp.StatusCode != 403 {
		t.Fatalf("read while off: %d", resp.StatusCode)
	}
	if _, ok := discoveryOf(t, env)["registration_endpoint"]; ok {
		t.Fatal("discovery lists registration_endpoint while registration is off")
	}
}

// TestRegistrationOpen: anyone registers, with the management API's
// validation and the registrant rules; the registration access token (and
// only it) reads, updates and deletes the client (RFC 7592).
func TestRegistrationOpen(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dsn string) {
		env := latchtest.Start(t, latchtest.Options{DSN: dsn, Configure: withRegistration("open", nil)})
		reg := env.URL + "/oauth2/register"
		if discoveryOf(t, env)["registration_endpoint"] != reg {
			t.Fatalf("discovery: %v", discoveryOf(t, env)["registration_endpoint"])
		}
		resp, pub := register(t, "POST", reg, "", nativeMetadata())
		if resp.StatusCode != 201 || pub["client_id"] == "" || pub["registration_access_token"] == nil || pub["client_secret"] != nil ||
			pub["registration_client_uri"] != reg+"/"+pub["client_id"].(string) || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("register public client: %d %v", resp.StatusCode, pub)
		}
		web := map[string]any{"client_name": "Web", "redirect_uris": []string{"https://client.example/cb"}, "application_type": "web",
			"grant_types": []string{"authorization_code", "refresh_token"}}
		resp, conf := register(t, "POST", reg, "", web)
		if resp.StatusCode != 201 || conf["client_secret"] == nil {
			t.Fatalf("register confidential client: %d %v", resp.StatusCode, conf)
		}
		// Refusals: the same validation as /api/clients, plus the rules
		// for registrants.
		for name, tc := range map[string]struct {
			body map[string]any
			code string
		}{
			"client_credentials, anonymously": {map[string]any{"client_name": "M", "grant_types": []string{"client_credentials"}, "response_types": []string{}}, "invalid_client_metadata"},
			"a fragment":                      {map[string]any{"client_name": "F", "redirect_uris": []string{"https://client.example/cb#x"}}, "invalid_redirect_uri"},
			"native with https":               {map[string]any{"client_name": "N", "application_type": "native", "redirect_uris": []string{"https://client.example/cb"}}, "invalid_redirect_uri"},
			"web with loopback http":          {map[string]any{"client_name": "W", "application_type": "web", "redirect_uris": []string{"http://127.0.0.1/cb"}}, "invalid_redirect_uri"},
			"unknown application_type":        {map[string]any{"client_name": "U", "application_type": "tv", "redirect_uris": []string{"https://client.example/cb"}}, "invalid_client_metadata"},
			"a chosen client_id":              {map[string]any{"client_id": "mine", "client_name": "C", "redirect_uris": []string{"https://client.example/cb"}}, "invalid_client_metadata"},
			"an owner":                        {map[string]any{"owner": "someone", "client_name": "O", "redirect_uris": []string{"https://client.example/cb"}}, "invalid_client_metadata"},
			"an unknown scope":                {map[string]any{"scope": "admin", "client_name": "S", "redirect_uris": []string{"https://client.example/cb"}}, "invalid_client_metadata"},
		} {
			if resp, out := register(t, "POST", reg, "", tc.body); resp.StatusCode != 400 || out["error"] != tc.code {
				t.Errorf("%s: %d %v", name, resp.StatusCode, out)
			}
		}

		// The registered client signs in.
		c := latchtest.Client{ID: conf["client_id"].(string), Secret: conf["client_secret"].(string), RedirectURIs: []string{"https://client.example/cb"}}
		tok := env.NewRP(c).Login(t, latchtest.NewBrowser(t), []string{"openid"}, map[string]any{"user": "alice"})
		if tok.AccessToken == "" {
			t.Fatal("no access token for a registered client")
		}

		// RFC 7592 with the right token, and only with it.
		uri, token := pub["registration_client_uri"].(string), pub["registration_access_token"].(string)
		otherToken := conf["registration_access_token"].(string)
		for name, bearer := range map[string]string{"no token": "", "wrong token": "nope", "another client's token": otherToken} {
			resp, out := register(t, "GET", uri, bearer, nil)
			if resp.StatusCode != 401 || out["error"] != "invalid_token" || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("read with %s: %d %v", name, resp.StatusCode, out)
			}
			if resp, _ := register(t, "DELETE", uri, bearer, nil); resp.StatusCode != 401 {
				t.Errorf("delete with %s: %d", name, resp.StatusCode)
			}
		}
		resp, got := register(t, "GET", uri, token, nil)
		if resp.StatusCode != 200 || got["client_name"] != "Agent" || got["registration_access_token"] != nil {
			t.Fatalf("read: %d %v", resp.StatusCode, got)
		}
		update := nativeMetadata()
		update["client_id"], update["client_name"] = pub["client_id"], "Agent v2"
		if resp, out := register(t, "PUT", uri, token, update); resp.StatusCode != 200 || out["client_name"] != "Agent v2" {
			t.Fatalf("update: %d %v", resp.StatusCode, out)
		}
		update["client_id"] = "someone-else"
		if resp, _ := register(t, "PUT", uri, token, update); resp.StatusCode != 400 {
			t.Fatalf("update naming another client_id: %d", resp.StatusCode)
		}
		update["client_id"], update["grant_types"], update["response_types"], update["redirect_uris"] = pub["client_id"], []string{"client_credentials"}, []string{}, nil
		update["token_endpoint_auth_method"] = "none"
		if resp, _ := register(t, "PUT", uri, token, update); resp.StatusCode != 400 {
			t.Fatalf("update to client_credentials: %d", resp.StatusCode)
		}
		// A client the host app created is not managed through 7592.
		managed := env.WebClient("client_secret_basic")
		if resp, _ := register(t, "GET", reg+"/"+managed.ID, token, nil); resp.StatusCode != 401 {
			t.Fatalf("read a managed client: %d", resp.StatusCode)
		}
		if resp, _ := register(t, "DELETE", uri, token, nil); resp.StatusCode != 204 {
			t.Fatalf("delete: %d", resp.StatusCode)
		}
		if resp, _ := register(t, "GET", uri, token, nil); resp.StatusCode != 401 {
			t.Fatalf("read after delete: %d", resp.StatusCode)
		}
		if status, _ := env.API("GET", "/api/clients/"+pub["client_id"].(string), nil); status != 404 {
			t.Fatalf("deleted client still there: %d", status)
		}
	})
}

// TestRegistrationToken: registration needs an initial access token from
// /api/registration_tokens; its limits hold; such a registrant may have a
// machine client.
func TestRegistrationToken(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dsn string) {
		clock := conformance.NewClockAt(time.Now())
		env := latchtest.Start(t, latchtest.Options{DSN: dsn, Now: clock.Now, Configure: withRegistration("token", nil)})
		reg := env.URL + "/oauth2/register"
		if resp, out := register(t, "POST", reg, "", nativeMetadata()); resp.StatusCode != 401 || out["error"] != "invalid_token" {
			t.Fatalf("register without a token: %d %v", resp.StatusCode, out)
		}
		if resp, _ := register(t, "POST", reg, "latch_reg_guess", nativeMetadata()); resp.StatusCode != 401 {
			t.Fatalf("register with a wrong token: %d", resp.StatusCode)
		}
		status, once := env.API("POST", "/api/registration_tokens", map[string]any{"max_uses": 1})
		if status != 201 || once["token"] == nil || once["id"] == nil {
			t.Fatalf("create token: %d %v", status, once)
		}
		machine := map[string]any{"client_name": "M", "grant_types": []string{"client_credentials"}, "response_types": []string{}}
		if resp, out := register(t, "POST", reg, once["token"].(string), machine); resp.StatusCode != 201 || out["client_secret"] == nil {
			t.Fatalf("register a machine client with a token: %d %v", resp.StatusCode, out)
		}
		if resp, _ := register(t, "POST", reg, once["token"].(string), nativeMetadata()); resp.StatusCode != 401 {
			t.Fatalf("token past max_uses: %d", resp.StatusCode)
		}
		_, hour := env.API("POST", "/api/registration_tokens", map[string]any{"expires_in": 3600})
		if resp, _ := register(t, "POST", reg, hour["token"].(string), nativeMetadata()); resp.StatusCode != 201 {
			t.Fatalf("token within its lifetime: %d", resp.StatusCode)
		}
		clock.Advance(2 * time.Hour)
		if resp, _ := register(t, "POST", reg, hour["token"].(string), nativeMetadata()); resp.StatusCode != 401 {
			t.Fatalf("expired token: %d", resp.StatusCode)
		}
		status, list := env.API("GET", "/api/registration_tokens", nil)
		tokens, _ := list["registration_tokens"].([]any)
		if status != 200 || len(tokens) != 2 {
			t.Fatalf("list: %d %v", status, list)
		}
		for _, tk := range tokens {
			if tk.(map[string]any)["token"] != nil {
				t.Fatal("list shows a token")
			}
		}
		if status, _ := env.API("DELETE", "/api/registration_tokens/"+url.PathEscape(hour["id"].(string)), nil); status != 204 {
			t.Fatalf("delete: %d", status)
		}
		if status, _ := env.API("DELETE", "/api/registration_tokens/"+url.PathEscape(hour["id"].(string)), nil); status != 404 {
			t.Fatalf("delete twice: %d", status)
		}
		if status, _ := env.API("POST", "/api/registration_tokens", map[string]any{"max_uses": -1}); status != 400 {
			t.Fatalf("negative max_uses: %d", status)
		}
	})
}

// TestRegistrationLimits: registrations are limited per address, and
// wrong registration tokens lock the address out like wrong secrets.
func TestRegistrationLimits(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: withRegistration("open", func(c *config.Config) { c.Limits.RegistrationPerMinute = 3 })})
	for i := range 3 {
		if resp, out := register(t, "POST", env.URL+"/oauth2/register", "", nativeMetadata()); resp.StatusCode != 201 {
			t.Fatalf("registration %d: %d %v", i, resp.StatusCode, out)
		}
	}
	resp, out := register(t, "POST", env.URL+"/oauth2/register", "", nativeMetadata())
	if resp.StatusCode != 429 || out["error"] != "rate_limited" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("fourth registration in a minute: %d %v", resp.StatusCode, out)
	}

	env = latchtest.Start(t, latchtest.Options{Configure: withRegistration("token", func(c *config.Config) { c.Limits.FailedCredentialsPerIP = 3 })})
	_, good := env.API("POST", "/api/registration_tokens", map[string]any{})
	for range 3 {
		register(t, "POST", env.URL+"/oauth2/register", "latch_reg_guess", nativeMetadata())
	}
	resp, out = register(t, "POST", env.URL+"/oauth2/register", good["token"].(string), nativeMetadata())
	if resp.StatusCode != 429 || out["error"] != "rate_limited" {
		t.Fatalf("correct token after three wrong ones: %d %v", resp.StatusCode, out)
	}
}

// TestIdleDynamicClientsPurged: a registered client that never obtained a
// token is deleted after dynamic_clients.idle_lifetime; one that did stays.
func TestIdleDynamicClientsPurged(t *testing.T) {
	clock := conformance.NewClockAt(time.Now())
	env := latchtest.Start(t, latchtest.Options{Now: clock.Now, Configure: withRegistration("open", func(c *config.Config) {
		c.DynamicClients.IdleLifetime = 24 * time.Hour
	})})
	web := map[string]any{"client_name": "Web", "redirect_uris": []string{"https://client.example/cb"}}
	_, used := register(t, "POST", env.URL+"/oauth2/register", "", web)
	_, idle := register(t, "POST", env.URL+"/oauth2/register", "", web)
	c := latchtest.Client{ID: used["client_id"].(string), Secret: used["client_secret"].(string), RedirectURIs: []string{"https://client.example/cb"}}
	env.NewRP(c).Login(t, latchtest.NewBrowser(t), []string{"openid"}, map[string]any{"user": "alice"})
	clock.Advance(25 * time.Hour)
	if _, err := env.App.Purge(t.Context()); err != nil {
		t.Fatal(err)
	}
	if status, _ := env.API("GET", "/api/clients/"+idle["client_id"].(string), nil); status != 404 {
		t.Fatalf("idle dynamic client: %d, want deleted", status)
	}
	if status, _ := env.API("GET", "/api/clients/"+c.ID, nil); status != 200 {
		t.Fatalf("dynamic client that obtained a token: %d, want kept", status)
	}
}
