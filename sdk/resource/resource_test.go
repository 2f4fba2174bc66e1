package resource

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchhq/latch/sdk/dpop"
)

// issuer is a minimal authorization server for unit tests: discovery and
// a JWKS it can rotate. Whole-flow tests against a real Latch live in the
// main module (e2e/sdk).
type issuer struct {
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	keys    []jose.JSONWebKey // private
	fetches atomic.Int32
}

func newIssuer(t testing.TB) *issuer {
	is := &issuer{t: t}
	is.rotate()
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		is.mu.Lock()
		var set jose.JSONWebKeySet
		for _, k := range is.keys {
			set.Keys = append(set.Keys, k.Public())
		}
		is.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

// rotate adds a new current key.
func (is *issuer) rotate() {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = append([]jose.JSONWebKey{{Key: k, KeyID: "k" + string(rune('a'+len(is.keys))), Algorithm: "ES256", Use: "sig"}}, is.keys...)
}

// mint signs claims with the current key (typ overrides at+jwt when set).
func (is *issuer) mint(claims map[string]any, typ string) string {
	is.t.Helper()
	if typ == "" {
		typ = "at+jwt"
	}
	is.mu.Lock()
	k := is.keys[0]
	is.mu.Unlock()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", k.KeyID))
	if err != nil {
		is.t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	obj, err := s.Sign(b)
	if err != nil {
		is.t.Fatal(err)
	}
	tok, _ := obj.CompactSerialize()
	return tok
}

const api = "https://api.example/v1"

func (is *issuer) claims(extra map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": is.srv.URL, "sub": "user-1", "aud": []string{api}, "client_id": "c1",
		"scope": "openid profile", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "jti": "j1"}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func (is *issuer) verifier(mod func(*Config)) *Verifier {
	cfg := Config{Issuer: is.srv.URL, Resource: api, PublicURL: "https://api.example"}
	if mod != nil {
		mod(&cfg)
	}
	v, err := New(cfg)
	if err != nil {
		is.t.Fatal(err)
	}
	return v
}

// call runs a request through Require(scopes) and returns the response.
func call(v *Verifier, scopes []string, hdr map[string]string) *httptest.ResponseRecorder {
	h := v.Require(scopes...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := ClaimsFrom(r.Context())
		_, _ = w.Write([]byte(c.Subject))
	}))
	r := httptest.NewRequest("GET", "https://api.example/v1/me?x=1", nil)
	for k, val := range hdr {
		r.Header.Set(k, val)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestJWTRules(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(nil)
	ok := is.mint(is.claims(nil), "")
	if w := call(v, []string{"profile"}, map[string]string{"Authorization": "Bearer " + ok}); w.Code != 200 || w.Body.String() != "user-1" {
		t.Fatalf("valid token: %d %s", w.Code, w.Body)
	}
	hour := time.Hour
	cases := []struct {
		name   string
		token  string
		scopes []string
		status int
		code   string
	}{
		{"other audience", is.mint(is.claims(map[string]any{"aud": "https://other.example"}), ""), nil, 401, "invalid_token"},
		{"audience is the issuer", is.mint(is.claims(map[string]any{"aud": is.srv.URL}), ""), nil, 401, "invalid_token"},
		{"expired", is.mint(is.claims(map[string]any{"exp": time.Now().Add(-hour).Unix()}), ""), nil, 401, "invalid_token"},
		{"no exp", is.mint(is.claims(map[string]any{"exp": nil}), ""), nil, 401, "invalid_token"},
		{"not yet valid", is.mint(is.claims(map[string]any{"nbf": time.Now().Add(hour).Unix()}), ""), nil, 401, "invalid_token"},
		{"other issuer", is.mint(is.claims(map[string]any{"iss": "https://evil.example"}), ""), nil, 401, "invalid_token"},
		{"an ID token", is.mint(is.claims(nil), "JWT"), nil, 401, "invalid_token"},
		{"exp as a string", is.mint(is.claims(map[string]any{"exp": "9999999999"}), ""), nil, 401, "invalid_token"},
		{"scope as an array", is.mint(is.claims(map[string]any{"scope": []string{"profile"}}), ""), nil, 401, "invalid_token"},
		{"missing scope", ok, []string{"profile", "admin"}, 403, "insufficient_scope"},
		{"bad signature", ok[:len(ok)-4] + "AAAA", nil, 401, "invalid_token"},
		{"garbage", "abc.def.ghi", nil, 401, "invalid_token"},
		{"opaque without introspection", "opaque-token", nil, 401, "invalid_token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := call(v, tc.scopes, map[string]string{"Authorization": "Bearer " + tc.token})
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, tc.status, w.Body)
			}
			ch := w.Header().Values("WWW-Authenticate")
			if len(ch) == 0 || !strings.HasPrefix(ch[0], `Bearer error="`+tc.code+`"`) || !strings.Contains(ch[0], `resource_metadata="https://api.example/.well-known/oauth-protected-resource/v1"`) {
				t.Fatalf("challenge %q", ch)
			}
			if tc.code == "insufficient_scope" && !strings.Contains(ch[0], `scope="profile admin"`) {
				t.Fatalf("challenge lacks the scope: %q", ch)
			}
		})
	}
}

func TestChallengeWithoutToken(t *testing.T) {
	is := newIssuer(t)
	w := call(is.verifier(nil), nil, nil)
	ch := w.Header().Values("WWW-Authenticate")
	if w.Code != 401 || len(ch) != 2 || ch[0] != `Bearer resource_metadata="https://api.example/.well-known/oauth-protected-resource/v1"` || !strings.HasPrefix(ch[1], `DPoP algs="ES256 `) {
		t.Fatalf("%d %q", w.Code, ch)
	}
	w = call(is.verifier(nil), nil, map[string]string{"Authorization": "Basic Zm9vOmJhcg=="})
	if w.Code != 401 || strings.Contains(w.Header().Get("WWW-Authenticate"), "error=") {
		t.Fatalf("another scheme: %d %q", w.Code, w.Header().Values("WWW-Authenticate"))
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Add("Authorization", "Bearer a")
	r.Header.Add("Authorization", "Bearer b")
	if _, err := is.verifier(nil).Verify(r); err == nil || err.(*Error).Status != 400 {
		t.Fatalf("two headers: %v", err)
	}
}

func TestLeeway(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(func(c *Config) { c.Leeway = 10 * time.Second })
	tok := is.mint(is.claims(map[string]any{"exp": time.Now().Add(-5 * time.Second).Unix()}), "")
	if w := call(v, nil, map[string]string{"Authorization": "Bearer " + tok}); w.Code != 200 {
		t.Fatalf("within leeway: %d", w.Code)
	}
	tok = is.mint(is.claims(map[string]any{"exp": time.Now().Add(-20 * time.Second).Unix()}), "")
	if w := call(v, nil, map[string]string{"Authorization": "Bearer " + tok}); w.Code != 401 {
		t.Fatalf("past leeway: %d", w.Code)
	}
}

// An unknown kid makes the verifier refetch the JWKS, but at most once per
// interval: a rotation is picked up, a flood of made-up kids is not a
// flood of fetches.
func TestJWKSRefetch(t *testing.T) {
	is := newIssuer(t)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	v := is.verifier(func(c *Config) {
		c.Now = clock
		c.Leeway = 24 * time.Hour // tokens are minted on the wall clock
	})
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	if w := call(v, nil, bearer(is.mint(is.claims(nil), ""))); w.Code != 200 {
		t.Fatalf("first: %d", w.Code)
	}
	is.rotate()
	advance(2 * time.Minute)
	rotated := is.mint(is.claims(nil), "")
	if w := call(v, nil, bearer(rotated)); w.Code != 200 {
		t.Fatalf("after rotation: %d %s", w.Code, w.Body)
	}
	if n := is.fetches.Load(); n != 2 {
		t.Fatalf("fetches %d, want 2", n)
	}
	is.rotate()
	again := is.mint(is.claims(nil), "")
	for range 50 {
		if w := call(v, nil, bearer(again)); w.Code != 401 {
			t.Fatalf("unknown kid within the interval: %d", w.Code)
		}
	}
	if n := is.fetches.Load(); n != 2 {
		t.Fatalf("fetches %d after 50 unknown kids within a minute, want 2", n)
	}
	advance(61 * time.Second)
	if w := call(v, nil, bearer(again)); w.Code != 200 {
		t.Fatalf("after the interval: %d", w.Code)
	}
	if n := is.fetches.Load(); n != 3 {
		t.Fatalf("fetches %d, want 3", n)
	}
}

func TestDPoP(t *testing.T) {
	is := newIssuer(t)
	key, err := dpop.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := dpop.NewKey()
	v := is.verifier(nil)
	bound := is.mint(is.claims(map[string]any{"cnf": map[string]string{"jkt": key.Thumbprint()}}), "")
	const u = "https://api.example/v1/me"
	proof := func(k *dpop.Key, method, url, tok string) string {
		p, err := k.Proof(method, url, tok, "")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := proof(key, "GET", u, bound)
	if w := call(v, nil, map[string]string{"Authorization": "DPoP " + bound, "DPoP": good}); w.Code != 200 {
		t.Fatalf("valid proof: %d %s", w.Code, w.Body)
	}
	oldKey := *key
	oldKey.Now = func() time.Time { return time.Now().Add(-10 * time.Minute) }
	cases := []struct {
		name string
		hdr  map[string]string
		code string
	}{
		{"replayed proof", map[string]string{"Authorization": "DPoP " + bound, "DPoP": good}, "invalid_dpop_proof"},
		{"no proof", map[string]string{"Authorization": "DPoP " + bound}, "invalid_dpop_proof"},
		{"bound token as bearer", map[string]string{"Authorization": "Bearer " + bound, "DPoP": proof(key, "GET", u, bound)}, "invalid_token"},
		{"another key", map[string]string{"Authorization": "DPoP " + bound, "DPoP": proof(other, "GET", u, bound)}, "invalid_dpop_proof"},
		{"wrong method", map[string]string{"Authorization": "DPoP " + bound, "DPoP": proof(key, "POST", u, bound)}, "invalid_dpop_proof"},
		{"wrong url", map[string]string{"Authorization": "DPoP " + bound, "DPoP": proof(key, "GET", "https://api.example/v1/other", bound)}, "invalid_dpop_proof"},
		{"no ath", map[string]string{"Authorization": "DPoP " + bound, "DPoP": proof(key, "GET", u, "")}, "invalid_dpop_proof"},
		{"ath of another token", map[string]string{"Authorization": "DPoP " + bound, "DPoP": proof(key, "GET", u, "other")}, "invalid_dpop_proof"},
		{"old proof", map[string]string{"Authorization": "DPoP " + bound, "DPoP": proof(&oldKey, "GET", u, bound)}, "invalid_dpop_proof"},
		{"unbound token with DPoP scheme", map[string]string{"Authorization": "DPoP " + is.mint(is.claims(nil), ""), "DPoP": proof(key, "GET", u, "")}, "invalid_token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := call(v, nil, tc.hdr)
			if w.Code != 401 {
				t.Fatalf("status %d", w.Code)
			}
			var dp string
			for _, c := range w.Header().Values("WWW-Authenticate") {
				if strings.HasPrefix(c, "DPoP ") {
					dp = c
				}
			}
			if !strings.HasPrefix(dp, `DPoP error="`+tc.code+`"`) {
				t.Fatalf("DPoP challenge %q", w.Header().Values("WWW-Authenticate"))
			}
		})
	}
	// A rejected proof does not burn its jti: sent right, it still works.
	fresh := proof(key, "GET", u, bound)
	w := call(v, nil, map[string]string{"Authorization": "Bearer " + bound, "DPoP": fresh})
	if w.Code != 401 {
		t.Fatal(w.Code)
	}
	if w := call(v, nil, map[string]string{"Authorization": "DPoP " + bound, "DPoP": fresh}); w.Code != 200 {
		t.Fatalf("a proof refused for another reason was burnt: %d", w.Code)
	}

	req := is.verifier(func(c *Config) { c.DPoP.Required = true })
	if w := call(req, nil, map[string]string{"Authorization": "Bearer x.y.z"}); !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `DPoP error="invalid_token"`) {
		t.Fatalf("a bad token where DPoP is required: %q", w.Header().Values("WWW-Authenticate"))
	}
	if w := call(req, nil, map[string]string{"Authorization": "Bearer " + is.mint(is.claims(nil), "")}); w.Code != 401 || len(w.Header().Values("WWW-Authenticate")) != 1 ||
		!strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `DPoP error="invalid_token"`) {
		t.Fatalf("bearer where DPoP is required: %d %q", w.Code, w.Header().Values("WWW-Authenticate"))
	}
}

func TestReplayCacheBounded(t *testing.T) {
	c := &replayCache{max: 2, seen: map[string]time.Time{}}
	now := time.Now()
	if !c.add("a", now.Add(time.Minute), now) || !c.add("b", now.Add(time.Minute), now) {
		t.Fatal("fresh keys refused")
	}
	if c.add("a", now.Add(time.Minute), now) {
		t.Fatal("replay accepted")
	}
	if c.add("c", now.Add(time.Minute), now) {
		t.Fatal("a full cache must refuse, not forget")
	}
	later := now.Add(2 * time.Minute)
	if !c.add("c", later.Add(time.Minute), later) || !c.add("a", later.Add(time.Minute), later) {
		t.Fatal("expired entries were not swept")
	}
}

func TestMetadata(t *testing.T) {
	is := newIssuer(t)
	v := is.verifier(func(c *Config) { c.ScopesSupported = []string{"profile"}; c.ResourceName = "Example API" })
	if v.MetadataPath() != "/.well-known/oauth-protected-resource/v1" {
		t.Fatal(v.MetadataPath())
	}
	w := httptest.NewRecorder()
	v.MetadataHandler().ServeHTTP(w, httptest.NewRequest("GET", v.MetadataPath(), nil))
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["resource"] != api || doc["authorization_servers"].([]any)[0] != is.srv.URL || doc["resource_name"] != "Example API" {
		t.Fatalf("%v", doc)
	}
	root, _ := New(Config{Issuer: is.srv.URL, Resource: "https://api.example"})
	if root.MetadataPath() != "/.well-known/oauth-protected-resource" {
		t.Fatal(root.MetadataPath())
	}
}

// An unreachable issuer is a 503 (retry), not a 401 (throw the token away).
func TestIssuerDown(t *testing.T) {
	is := newIssuer(t)
	tok := is.mint(is.claims(nil), "")
	v := is.verifier(nil)
	is.srv.Close()
	w := call(v, nil, map[string]string{"Authorization": "Bearer " + tok})
	if w.Code != 503 {
		t.Fatalf("%d", w.Code)
	}
	var e *Error
	if _, err := v.Verify(httptest.NewRequest("GET", "/", nil)); !errors.As(err, &e) {
		t.Fatal(err)
	}
}
