package server_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/provider"
	"github.com/latchhq/latch/secret"
	"github.com/latchhq/latch/storage"
)

type assertionKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

func newAssertionKey(t *testing.T) assertionKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return assertionKey{priv: k, kid: secret.Random(8)}
}

func (k assertionKey) jwks(t *testing.T) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.priv.Public(), KeyID: k.kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertion signs an RFC 7523 client assertion with go-jose v4.
func (k assertionKey) assertion(t *testing.T, clientID string, aud any, jti string, exp time.Time) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := josejwt.Signed(sig).Claims(map[string]any{
		"iss": clientID, "sub": clientID, "aud": aud, "jti": jti,
		"iat": time.Now().Unix(), "exp": exp.Unix(),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func assertionForm(grant url.Values, assertion string) url.Values {
	f := url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
	for k, v := range grant {
		f[k] = v
	}
	return f
}

// TestPrivateKeyJWT: clients authenticate with assertions signed by keys
// registered inline (jwks) or published (jwks_uri); the aud may be the
// issuer or the token endpoint; a jti is accepted once; a foreign key, a
// foreign audience or an expired assertion are refused.
func TestPrivateKeyJWT(t *testing.T) {
	// The key server is plain http on loopback.
	env := latchtest.Start(t, latchtest.Options{Configure: allowLoopbackFetches})
	tokenURL := env.URL + "/oauth2/token"
	grant := url.Values{"grant_type": {"client_credentials"}, "scope": {"profile"}}

	inline := newAssertionKey(t)
	c := env.CreateClient(clients.Metadata{ClientName: "pkjwt", GrantTypes: []string{"client_credentials"},
		TokenEndpointAuthMethod: "private_key_jwt", JWKS: inline.jwks(t), Scope: "profile"})
	if c.Secret != "" {
		t.Fatal("private_key_jwt client got a secret")
	}

	published := newAssertionKey(t)
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(published.jwks(t)))
	}))
	defer jwksSrv.Close()
	c2 := env.CreateClient(clients.Metadata{ClientName: "pkjwt-uri", GrantTypes: []string{"client_credentials"},
		TokenEndpointAuthMethod: "private_key_jwt", JWKSURI: "https://keys.example/jwks.json", Scope: "profile",
		// Without inline keys the assertion alg defaults to RS256.
		TokenEndpointAuthSigningAlg: "ES256"})
	// Registration insists on https; the test's key server is plain http.
	setClient(t, env, c2.ID, func(sc *storage.Client) { sc.JWKSURI = jwksSrv.URL })

	soon := time.Now().Add(time.Minute)
	replayed := inline.assertion(t, c.ID, tokenURL, "jti-replayed", soon)
	for _, tc := range []struct {
		name      string
		assertion string
		status    int
		code      string
	}{
		{"jwks, aud token endpoint", replayed, 200, ""},
		{"jwks, aud issuer", inline.assertion(t, c.ID, env.URL, secret.Random(8), soon), 200, ""},
		{"jwks, aud issuer in an array", inline.assertion(t, c.ID, []string{env.URL}, secret.Random(8), soon), 200, ""},
		{"jwks_uri", published.assertion(t, c2.ID, env.URL, secret.Random(8), soon), 200, ""},
		{"replayed jti", replayed, 401, "invalid_client"},
		{"foreign audience", inline.assertion(t, c.ID, "https://other.example/token", secret.Random(8), soon), 401, "invalid_client"},
		{"audience of another endpoint", inline.assertion(t, c.ID, env.URL+"/userinfo", secret.Random(8), soon), 401, "invalid_client"},
		{"signed by another key with the registered kid", assertionKey{newAssertionKey(t).priv, inline.kid}.assertion(t, c.ID, tokenURL, secret.Random(8), soon), 401, "invalid_client"},
		{"signed by an unknown key", newAssertionKey(t).assertion(t, c.ID, tokenURL, secret.Random(8), soon), 401, "invalid_client"},
		{"another client's key", published.assertion(t, c.ID, tokenURL, secret.Random(8), soon), 401, "invalid_client"},
		{"expired", inline.assertion(t, c.ID, tokenURL, secret.Random(8), time.Now().Add(-time.Minute)), 401, "invalid_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := send(t, "POST", tokenURL, assertionForm(grant, tc.assertion), nil)
			if resp.StatusCode != tc.status || (tc.code != "" && body["error"] != tc.code) {
				t.Fatalf("got %d %v, want %d %s", resp.StatusCode, body, tc.status, tc.code)
			}
			if tc.status == 200 && body["access_token"] == nil {
				t.Fatalf("no token: %v", body)
			}
		})
	}

	// The same authentication works at introspection.
	_, tok := send(t, "POST", tokenURL, assertionForm(grant, inline.assertion(t, c.ID, env.URL, secret.Random(8), soon)), nil)
	resp, in := send(t, "POST", env.URL+"/oauth2/introspect",
		assertionForm(url.Values{"token": {tok["access_token"].(string)}}, inline.assertion(t, c.ID, tokenURL, secret.Random(8), soon)), nil)
	if resp.StatusCode != 200 || in["active"] != true || in["client_id"] != c.ID {
		t.Fatalf("introspection with private_key_jwt: %d %v", resp.StatusCode, in)
	}
}

func allowLoopbackFetches(c *config.Config) { c.Outbound.AllowLoopback = true }

// keyServer is a jwks_uri on loopback that counts the bytes and requests
// it serves.
type keyServer struct {
	*httptest.Server
	hits, written atomic.Int64
}

func newKeyServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request) int64) *keyServer {
	t.Helper()
	k := &keyServer{}
	k.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.hits.Add(1)
		k.written.Add(h(w, r))
	}))
	t.Cleanup(k.Close)
	return k
}

func serveBody(body string) func(http.ResponseWriter, *http.Request) int64 {
	return func(w http.ResponseWriter, _ *http.Request) int64 {
		w.Header().Set("Content-Type", "application/json")
		n, _ := w.Write([]byte(body))
		return int64(n)
	}
}

// TestJWKSURIFetchIsHardened: a client's jwks_uri is fetched by the
// outbound fetcher (SPEC §7), not fosite's default one, which followed
// redirects, read unbounded bodies, refetched for every unknown kid and
// answered failures with a 500 naming the URL and the upstream status.
func TestJWKSURIFetchIsHardened(t *testing.T) {
	logs := &latchtest.SyncBuffer{}
	env := latchtest.Start(t, latchtest.Options{Configure: allowLoopbackFetches, Log: logs})
	tokenURL := env.URL + "/oauth2/token"
	grant := url.Values{"grant_type": {"client_credentials"}, "scope": {"profile"}}
	key := newAssertionKey(t)
	clientAt := func(jwksURI string) string {
		c := env.CreateClient(clients.Metadata{ClientName: "pkjwt-uri", GrantTypes: []string{"client_credentials"},
			TokenEndpointAuthMethod: "private_key_jwt", JWKSURI: "https://keys.example/jwks.json", Scope: "profile",
			TokenEndpointAuthSigningAlg: "ES256"})
		setClient(t, env, c.ID, func(sc *storage.Client) { sc.JWKSURI = jwksURI })
		return c.ID
	}
	authenticate := func(t *testing.T, k assertionKey, id string) (*http.Response, map[string]any) {
		t.Helper()
		return send(t, "POST", tokenURL, assertionForm(grant, k.assertion(t, id, env.URL, secret.Random(8), time.Now().Add(time.Minute))), nil)
	}
	wantInvalidClient := func(t *testing.T, resp *http.Response, body map[string]any) {
		t.Helper()
		if resp.StatusCode != 401 || body["error"] != "invalid_client" {
			t.Fatalf("got %d %v, want 401 invalid_client", resp.StatusCode, body)
		}
	}

	t.Run("redirect not followed", func(t *testing.T) {
		target := newKeyServer(t, serveBody(key.jwks(t)))
		redirect := newKeyServer(t, func(w http.ResponseWriter, r *http.Request) int64 {
			http.Redirect(w, r, target.URL, http.StatusFound)
			return 0
		})
		resp, body := authenticate(t, key, clientAt(redirect.URL))
		wantInvalidClient(t, resp, body)
		if n := target.hits.Load(); n != 0 {
			t.Fatalf("the redirect target was fetched %d times", n)
		}
	})

	t.Run("huge body refused", func(t *testing.T) {
		const huge = 64 << 20
		endless := newKeyServer(t, func(w http.ResponseWriter, _ *http.Request) int64 {
			w.Header().Set("Content-Type", "application/json")
			n, _ := w.Write([]byte(`{"keys":[`))
			chunk := bytes.Repeat([]byte(" "), 32<<10)
			for int64(n) < huge {
				m, err := w.Write(chunk)
				n += m
				if err != nil {
					break
				}
			}
			return int64(n)
		})
		resp, body := authenticate(t, key, clientAt(endless.URL))
		wantInvalidClient(t, resp, body)
		endless.Close() // waits for the handler, so written is final
		if n := endless.written.Load(); n >= huge {
			t.Fatalf("all %d bytes were sent: the body was read to its end", n)
		}
	})

	t.Run("unknown kid does not refetch every time", func(t *testing.T) {
		ks := newKeyServer(t, serveBody(key.jwks(t)))
		id := clientAt(ks.URL)
		if resp, body := authenticate(t, key, id); resp.StatusCode != 200 {
			t.Fatalf("known kid: %d %v", resp.StatusCode, body)
		}
		stranger := newAssertionKey(t)
		for range 20 {
			resp, body := authenticate(t, stranger, id)
			wantInvalidClient(t, resp, body)
		}
		if n := ks.hits.Load(); n > 2 {
			t.Fatalf("21 requests fetched the key set %d times", n)
		}
	})

	t.Run("failure reveals nothing and logs one line", func(t *testing.T) {
		const upstream = "UPSTREAM-SECRET-BODY"
		broken := newKeyServer(t, func(w http.ResponseWriter, _ *http.Request) int64 {
			w.WriteHeader(http.StatusTeapot)
			n, _ := w.Write([]byte(upstream))
			return int64(n)
		})
		id := clientAt(broken.URL + "/jwks-broken")
		before := strings.Count(logs.String(), "\n")
		for range 3 {
			resp, body := authenticate(t, key, id)
			wantInvalidClient(t, resp, body)
			text := fmt.Sprint(body)
			for _, leak := range []string{upstream, "418", strings.TrimPrefix(broken.URL, "http://"), "jwks-broken"} {
				if strings.Contains(text, leak) {
					t.Fatalf("the response reveals %q: %v", leak, body)
				}
			}
		}
		lines := strings.Split(logs.String(), "\n")[before:]
		var warnings []string
		for _, l := range lines {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				warnings = append(warnings, l)
			}
		}
		if len(warnings) != 1 || strings.Contains(warnings[0], upstream) || strings.Contains(warnings[0], "goroutine") ||
			!strings.Contains(warnings[0], "jwks-broken") {
			t.Fatalf("want one warning naming the URL without the body or a stack trace, got:\n%s", strings.Join(warnings, "\n"))
		}
	})
}

// TestClientAssertionLifetimeBounded: an assertion whose exp lies further
// ahead than provider.MaxClientAssertionLifetime is refused, since it is
// a reusable credential until then.
func TestClientAssertionLifetimeBounded(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	tokenURL := env.URL + "/oauth2/token"
	grant := url.Values{"grant_type": {"client_credentials"}, "scope": {"profile"}}
	key := newAssertionKey(t)
	c := env.CreateClient(clients.Metadata{ClientName: "pkjwt", GrantTypes: []string{"client_credentials"},
		TokenEndpointAuthMethod: "private_key_jwt", JWKS: key.jwks(t), Scope: "profile"})
	for _, tc := range []struct {
		name   string
		exp    time.Duration
		status int
	}{
		{"five minutes", 5 * time.Minute, 200},
		{"the maximum", provider.MaxClientAssertionLifetime, 200},
		{"an hour", time.Hour, 401},
		{"a year", 365 * 24 * time.Hour, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := send(t, "POST", tokenURL, assertionForm(grant, key.assertion(t, c.ID, tokenURL, secret.Random(8), time.Now().Add(tc.exp))), nil)
			if resp.StatusCode != tc.status || (tc.status == 401 && body["error"] != "invalid_client") {
				t.Fatalf("got %d %v, want %d", resp.StatusCode, body, tc.status)
			}
		})
	}
}

// TestClientAssertionJTIsPerClient: two clients may use the same jti, so
// one client cannot burn the jtis another is about to use.
func TestClientAssertionJTIsPerClient(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	tokenURL := env.URL + "/oauth2/token"
	grant := url.Values{"grant_type": {"client_credentials"}, "scope": {"profile"}}
	soon := time.Now().Add(time.Minute)
	mallory, alice := newAssertionKey(t), newAssertionKey(t)
	m := env.CreateClient(clients.Metadata{ClientName: "mallory", GrantTypes: []string{"client_credentials"},
		TokenEndpointAuthMethod: "private_key_jwt", JWKS: mallory.jwks(t), Scope: "profile"})
	a := env.CreateClient(clients.Metadata{ClientName: "alice", GrantTypes: []string{"client_credentials"},
		TokenEndpointAuthMethod: "private_key_jwt", JWKS: alice.jwks(t), Scope: "profile"})
	for _, step := range []struct {
		who    string
		key    assertionKey
		id     string
		status int
	}{
		{"mallory uses alice's next jti", mallory, m.ID, 200},
		{"alice uses it too", alice, a.ID, 200},
		{"alice replays it", alice, a.ID, 401},
		{"mallory replays it", mallory, m.ID, 401},
	} {
		resp, body := send(t, "POST", tokenURL, assertionForm(grant, step.key.assertion(t, step.id, tokenURL, "predictable-jti-1", soon)), nil)
		if resp.StatusCode != step.status {
			t.Fatalf("%s: got %d %v, want %d", step.who, resp.StatusCode, body, step.status)
		}
	}
}
