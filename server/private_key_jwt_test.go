package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/latchtest"
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
	env := latchtest.Start(t, latchtest.Options{})
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
