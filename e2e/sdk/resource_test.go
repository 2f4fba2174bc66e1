package sdke2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/examples/stack"
	"github.com/latchhq/latch/keys"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/sdk/dpop"
	"github.com/latchhq/latch/sdk/resource"
	"github.com/latchhq/latch/sdk/tokenagent"
)

const api = "https://api.example/v1"

// audienceParams asks for api as the token's audience: RFC 8707's resource
// (SPEC §6) and the audience parameter main understands today.
func audienceParams(aud string) url.Values {
	return url.Values{"resource": {aud}, "audience": {aud}}
}

func authOpts(aud string) []oauth2.AuthCodeOption {
	var o []oauth2.AuthCodeOption
	for k, v := range audienceParams(aud) {
		o = append(o, oauth2.SetAuthURLParam(k, v[0]))
	}
	return o
}

// withResources makes api and the other audience known to Latch (RFC 8707)
// when it has resource indicators.
func withResources(c *config.Config) {
	stack.ConfigureResources(c, api, "https://other.example/v1")
}

// apiClient registers a client allowed to ask for api (and other) tokens.
func apiClient(env *latchtest.Env, grants ...string) latchtest.Client {
	m := clients.Metadata{
		ClientName: "API client", GrantTypes: grants, TokenEndpointAuthMethod: "client_secret_basic",
		Scope:    "openid profile email offline_access",
		Audience: []string{api, "https://other.example/v1"},
	}
	if slices.Contains(grants, "authorization_code") {
		m.RedirectURIs = []string{"https://client.example/cb"}
	} else {
		m.ResponseTypes = []string{}
	}
	return env.CreateClient(m)
}

// protectedAPI serves GET /v1/me (scope profile) and /v1/admin (scope
// admin) behind v, as the host app would.
func protectedAPI(t *testing.T, v *resource.Verifier) *httptest.Server {
	mux := http.NewServeMux()
	me := func(w http.ResponseWriter, r *http.Request) {
		c, _ := resource.ClaimsFrom(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]any{"sub": c.Subject, "client_id": c.ClientID, "scope": c.Scopes, "raw": c.Raw})
	}
	mux.Handle("GET /v1/me", v.Require("profile")(http.HandlerFunc(me)))
	mux.Handle("GET /v1/admin", v.Require("admin")(http.HandlerFunc(me)))
	mux.Handle("GET /v1/any", v.Require()(http.HandlerFunc(me)))
	mux.Handle(v.MetadataPath(), v.MetadataHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func verifier(t *testing.T, env *latchtest.Env, mod func(*resource.Config)) *resource.Verifier {
	cfg := resource.Config{Issuer: env.URL, Resource: api, PublicURL: "https://api.example", Leeway: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	v, err := resource.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func get(t *testing.T, u string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestResourceMiddlewareWithLatchTokens(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: withResources})
	c := apiClient(env, "authorization_code", "refresh_token")
	rp := env.NewRP(c)
	login := func(aud string, scopes ...string) *oauth2.Token {
		u, verifier := rp.AuthURL(scopes, authOpts(aud)...)
		return rp.Exchange(t, env.Authorize(latchtest.NewBrowser(t), u, map[string]any{"user": "ann"}), verifier)
	}
	now := time.Now()
	var mu sync.Mutex
	v := verifier(t, env, func(c *resource.Config) {
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	srv := protectedAPI(t, v)
	mine := login(api, "openid", "profile")
	bearer := map[string]string{"Authorization": "Bearer " + mine.AccessToken}

	resp, body := get(t, srv.URL+"/v1/me", bearer)
	if resp.StatusCode != 200 || !strings.Contains(body, `"sub":"ann"`) || !strings.Contains(body, `"client_id":"`+c.ID+`"`) {
		t.Fatalf("valid token: %d %s", resp.StatusCode, body)
	}
	challenge := func(resp *http.Response) string { return resp.Header.Get("WWW-Authenticate") }

	t.Run("missing scope", func(t *testing.T) {
		resp, _ := get(t, srv.URL+"/v1/admin", bearer)
		if resp.StatusCode != 403 || !strings.HasPrefix(challenge(resp), `Bearer error="insufficient_scope"`) {
			t.Fatalf("%d %q", resp.StatusCode, challenge(resp))
		}
	})
	t.Run("token for another audience", func(t *testing.T) {
		other := login("https://other.example/v1", "openid", "profile")
		if !strings.Contains(decodePayload(t, other.AccessToken), `"aud":["https://other.example/v1"]`) {
			t.Fatalf("control: Latch did not issue a token for the other audience: %s", decodePayload(t, other.AccessToken))
		}
		resp, body := get(t, srv.URL+"/v1/me", map[string]string{"Authorization": "Bearer " + other.AccessToken})
		if resp.StatusCode != 401 || !strings.Contains(challenge(resp), `error="invalid_token"`) || !strings.Contains(body, "not for this resource") {
			t.Fatalf("%d %q", resp.StatusCode, challenge(resp))
		}
	})
	t.Run("token for Latch itself", func(t *testing.T) {
		u, verifier := rp.AuthURL([]string{"openid", "profile"})
		own := rp.Exchange(t, env.Authorize(latchtest.NewBrowser(t), u, map[string]any{"user": "ann"}), verifier)
		resp, _ := get(t, srv.URL+"/v1/me", map[string]string{"Authorization": "Bearer " + own.AccessToken})
		if resp.StatusCode != 401 {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
	t.Run("ID token", func(t *testing.T) {
		resp, _ := get(t, srv.URL+"/v1/any", map[string]string{"Authorization": "Bearer " + mine.Extra("id_token").(string)})
		if resp.StatusCode != 401 {
			t.Fatalf("an ID token passed as an access token: %d", resp.StatusCode)
		}
	})
	t.Run("no token", func(t *testing.T) {
		resp, _ := get(t, srv.URL+"/v1/me", nil)
		if resp.StatusCode != 401 || challenge(resp) != `Bearer resource_metadata="https://api.example/.well-known/oauth-protected-resource/v1"` {
			t.Fatalf("%d %q", resp.StatusCode, challenge(resp))
		}
		resp, body := get(t, srv.URL+"/.well-known/oauth-protected-resource/v1", nil)
		if resp.StatusCode != 200 || !strings.Contains(body, `"authorization_servers":["`+env.URL+`"]`) {
			t.Fatalf("metadata %d %s", resp.StatusCode, body)
		}
	})
	t.Run("expired token", func(t *testing.T) {
		mu.Lock()
		now = now.Add(env.Config.Tokens.AccessTokenLifetime + time.Minute)
		mu.Unlock()
		defer func() { mu.Lock(); now = time.Now(); mu.Unlock() }()
		resp, body := get(t, srv.URL+"/v1/me", bearer)
		if resp.StatusCode != 401 || !strings.Contains(body, "expired") {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
}

// A DPoP-bound token from Latch: refused without a proof, as a bearer
// token, and with a replayed proof; accepted with a fresh one.
func TestResourceDPoPWithLatchTokens(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: withResources})
	c := apiClient(env, "client_credentials")
	key, err := dpop.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	agent, err := tokenagent.New(ctx, tokenagent.Config{TokenURL: env.URL + "/oauth2/token", ClientID: c.ID, ClientSecret: c.Secret,
		ClientCredentials: true, Scopes: []string{"profile"}, Params: audienceParams(api), DPoP: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := agent.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok.Type() != "DPoP" || !strings.Contains(decodePayload(t, tok.AccessToken), `"jkt":"`+key.Thumbprint()+`"`) {
		t.Fatalf("not a bound token: %+v", tok)
	}
	srv := protectedAPI(t, verifier(t, env, func(c *resource.Config) { c.PublicURL = "" }))
	u := srv.URL + "/v1/me"
	proof, _ := key.Proof("GET", u, tok.AccessToken, "")
	auth := "DPoP " + tok.AccessToken

	if resp, _ := get(t, u, map[string]string{"Authorization": auth}); resp.StatusCode != 401 || !hasChallenge(resp, `DPoP error="invalid_dpop_proof"`) {
		t.Fatalf("without a proof: %d %q", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
	}
	if resp, _ := get(t, u, map[string]string{"Authorization": "Bearer " + tok.AccessToken}); resp.StatusCode != 401 || !hasChallenge(resp, `DPoP error="invalid_token"`) {
		t.Fatalf("as a bearer token: %d", resp.StatusCode)
	}
	if resp, body := get(t, u, map[string]string{"Authorization": auth, "DPoP": proof}); resp.StatusCode != 200 || !strings.Contains(body, `"sub":"`+c.ID+`"`) {
		t.Fatalf("with a proof: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, u, map[string]string{"Authorization": auth, "DPoP": proof}); resp.StatusCode != 401 || !hasChallenge(resp, `DPoP error="invalid_dpop_proof", error_description="the proof was already used"`) {
		t.Fatalf("replayed proof: %d %q", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
	}
	// The agent's transport signs a fresh proof per request.
	hc := &http.Client{Transport: agent.Transport(nil)}
	for range 3 {
		resp, err := hc.Get(u)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("through the agent: %v %v", resp.StatusCode, err)
		}
		resp.Body.Close()
	}
}

func hasChallenge(resp *http.Response, prefix string) bool {
	for _, c := range resp.Header.Values("WWW-Authenticate") {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

// Opaque tokens go through introspection, with the answer cached briefly.
func TestResourceIntrospection(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: func(c *config.Config) { withResources(c); c.Tokens.AccessTokenFormat = config.AccessTokenOpaque }})
	c := apiClient(env, "client_credentials")
	cc := func(aud string) string {
		a, _ := tokenagent.New(ctx, tokenagent.Config{TokenURL: env.URL + "/oauth2/token", ClientID: c.ID, ClientSecret: c.Secret,
			ClientCredentials: true, Scopes: []string{"profile"}, Params: audienceParams(aud)}, nil)
		tok, err := a.Token()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(tok.AccessToken, ".") == 2 && strings.HasPrefix(tok.AccessToken, "ey") {
			t.Fatalf("not opaque: %s", tok.AccessToken)
		}
		return tok.AccessToken
	}
	cached := protectedAPI(t, verifier(t, env, func(c *resource.Config) {
		c.Introspection = &resource.Introspection{APIKey: latchtest.APIKey}
	}))
	uncached := protectedAPI(t, verifier(t, env, func(c *resource.Config) {
		c.Introspection = &resource.Introspection{APIKey: latchtest.APIKey, CacheTTL: -1}
	}))
	tok := cc(api)
	for _, srv := range []*httptest.Server{cached, uncached} {
		if resp, body := get(t, srv.URL+"/v1/me", map[string]string{"Authorization": "Bearer " + tok}); resp.StatusCode != 200 {
			t.Fatalf("opaque token: %d %s", resp.StatusCode, body)
		}
	}
	if resp, _ := get(t, cached.URL+"/v1/me", map[string]string{"Authorization": "Bearer " + cc("https://other.example/v1")}); resp.StatusCode != 401 {
		t.Fatalf("opaque token for another audience: %d", resp.StatusCode)
	}
	revoke(t, env, c, tok)
	if resp, _ := get(t, uncached.URL+"/v1/me", map[string]string{"Authorization": "Bearer " + tok}); resp.StatusCode != 401 {
		t.Fatalf("revoked, uncached: %d", resp.StatusCode)
	}
	if resp, _ := get(t, cached.URL+"/v1/me", map[string]string{"Authorization": "Bearer " + tok}); resp.StatusCode != 200 {
		t.Fatalf("revoked, within the cache's TTL: %d (the cache did not serve)", resp.StatusCode)
	}
}

func revoke(t *testing.T, env *latchtest.Env, c latchtest.Client, tok string) {
	t.Helper()
	req, _ := http.NewRequest("POST", env.URL+"/oauth2/revoke", strings.NewReader(url.Values{"token": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ID, c.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	resp.Body.Close()
}

// After Latch rotates its signing key, tokens signed by the new key pass:
// the unknown kid makes the verifier fetch the JWKS again.
func TestResourceKeyRotation(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: withResources})
	c := apiClient(env, "client_credentials")
	agent, _ := tokenagent.New(ctx, tokenagent.Config{TokenURL: env.URL + "/oauth2/token", ClientID: c.ID, ClientSecret: c.Secret,
		ClientCredentials: true, Scopes: []string{"profile"}, Params: audienceParams(api)}, nil)
	srv := protectedAPI(t, verifier(t, env, func(c *resource.Config) { c.JWKSRefetchInterval = time.Millisecond }))
	hc := &http.Client{Transport: agent.Transport(nil)}
	call := func() {
		t.Helper()
		resp, err := hc.Get(srv.URL + "/v1/me")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %v", resp.StatusCode, err)
		}
		resp.Body.Close()
	}
	call()
	before, _ := agent.Token()
	kid, err := env.App.Keys.Rotate(ctx, keys.ES256, 0, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	agent.Invalidate(before)
	time.Sleep(2 * time.Millisecond)
	call()
	after, _ := agent.Token()
	if !strings.Contains(headerOf(t, after.AccessToken), kid) {
		t.Fatalf("the new token is not signed by the new key %s", kid)
	}
}

func headerOf(t *testing.T, jwt string) string {
	return decodePayload(t, "x."+strings.SplitN(jwt, ".", 2)[0]+".x")
}
