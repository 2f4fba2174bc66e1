package dpop_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchhq/latch/dpop"
	"github.com/latchhq/latch/storage"
)

const tokenURL = "https://auth.example/oauth2/token"

var t0 = time.Unix(1_800_000_000, 0)

func openStore(t testing.TB) *storage.Store {
	t.Helper()
	s, err := storage.Open("sqlite://"+filepath.Join(t.TempDir(), "dpop.db"), storage.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newVerifier(t testing.TB, store dpop.ReplayStore, now *time.Time, nonce bool) *dpop.Verifier {
	t.Helper()
	v, err := dpop.New(dpop.Options{
		IATWindow: time.Minute, NonceRequired: nonce, NonceSecret: []byte("0123456789abcdef0123456789abcdef"),
		NonceWindow: 5 * time.Minute, IsReplay: func(err error) bool { return errors.Is(err, storage.ErrReplay) },
		Now: func() time.Time { return *now },
	}, store)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// rawES256 signs any header and payload by hand, so a test can build proofs
// go-jose would refuse to make (alg none, private jwk, foreign jwk).
func rawES256(t testing.TB, k *ecdsa.PrivateKey, header map[string]any, payload any) string {
	t.Helper()
	in := b64(header) + "." + b64(payload)
	h := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func publicJWK(t testing.TB, k crypto.PublicKey) map[string]any {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: k})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func claims(extra map[string]any) map[string]any {
	c := map[string]any{"jti": "jti-" + strings.Repeat("x", 8), "htm": "POST", "htu": tokenURL, "iat": t0.Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func TestVerifyRules(t *testing.T) {
	key := ecKey(t)
	other := ecKey(t)
	signer := &dpop.Signer{Key: key, Alg: jose.ES256, Now: func() time.Time { return t0 }}
	jwk := publicJWK(t, key.Public())
	hdr := func(extra map[string]any) map[string]any {
		h := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
		for k, v := range extra {
			if v == nil {
				delete(h, k)
				continue
			}
			h[k] = v
		}
		return h
	}
	privJWK := map[string]any{}
	for k, v := range jwk {
		privJWK[k] = v
	}
	privJWK["d"] = base64.RawURLEncoding.EncodeToString(key.D.FillBytes(make([]byte, 32)))
	sign := func(h, c map[string]any) string { return rawES256(t, key, h, c) }

	cases := []struct {
		name   string
		proofs []string
		req    dpop.Request
		want   error
	}{
		{"valid", []string{sign(hdr(nil), claims(nil))}, dpop.Request{}, nil},
		{"valid htu with query and fragment ignored", []string{sign(hdr(nil), claims(map[string]any{"htu": tokenURL + "?a=b#frag"}))}, dpop.Request{}, nil},
		{"valid htu case and default port", []string{sign(hdr(nil), claims(map[string]any{"htu": "HTTPS://Auth.Example:443/oauth2/token"}))}, dpop.Request{}, nil},
		{"missing header", nil, dpop.Request{}, dpop.ErrMissing},
		{"empty header", []string{""}, dpop.Request{}, dpop.ErrMissing},
		{"two headers", []string{sign(hdr(nil), claims(nil)), sign(hdr(nil), claims(nil))}, dpop.Request{}, dpop.ErrMultiple},
		{"not a JWS", []string{"abc.def"}, dpop.Request{}, dpop.ErrMalformed},
		{"header not base64", []string{"!!!.e30.sig"}, dpop.Request{}, dpop.ErrMalformed},
		{"header not JSON", []string{base64.RawURLEncoding.EncodeToString([]byte("nope")) + ".e30.sig"}, dpop.Request{}, dpop.ErrMalformed},
		{"typ missing", []string{sign(hdr(map[string]any{"typ": nil}), claims(nil))}, dpop.Request{}, dpop.ErrTyp},
		{"typ JWT", []string{sign(hdr(map[string]any{"typ": "JWT"}), claims(nil))}, dpop.Request{}, dpop.ErrTyp},
		{"alg none", []string{b64(hdr(map[string]any{"alg": "none"})) + "." + b64(claims(nil)) + "."}, dpop.Request{}, dpop.ErrAlg},
		{"alg HS256", []string{b64(hdr(map[string]any{"alg": "HS256"})) + "." + b64(claims(nil)) + ".c2ln"}, dpop.Request{}, dpop.ErrAlg},
		{"alg not offered", []string{sign(hdr(map[string]any{"alg": "ES512"}), claims(nil))}, dpop.Request{}, dpop.ErrAlg},
		{"jwk missing", []string{sign(hdr(map[string]any{"jwk": nil}), claims(nil))}, dpop.Request{}, dpop.ErrJWK},
		{"jwk private", []string{sign(hdr(map[string]any{"jwk": privJWK}), claims(nil))}, dpop.Request{}, dpop.ErrJWK},
		{"jwk symmetric", []string{sign(hdr(map[string]any{"jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}}), claims(nil))}, dpop.Request{}, dpop.ErrJWK},
		{"signed by another key", []string{rawES256(t, other, hdr(nil), claims(nil))}, dpop.Request{}, dpop.ErrSignature},
		{"claims not JSON", []string{sign(hdr(nil), nil)}, dpop.Request{}, dpop.ErrClaims},
		{"jti missing", []string{sign(hdr(nil), claims(map[string]any{"jti": nil}))}, dpop.Request{}, dpop.ErrClaims},
		{"iat a string", []string{sign(hdr(nil), claims(map[string]any{"iat": "now"}))}, dpop.Request{}, dpop.ErrClaims},
		{"htm mismatch", []string{sign(hdr(nil), claims(map[string]any{"htm": "GET"}))}, dpop.Request{}, dpop.ErrHTM},
		{"htm lower case", []string{sign(hdr(nil), claims(map[string]any{"htm": "post"}))}, dpop.Request{}, dpop.ErrHTM},
		{"htu other path", []string{sign(hdr(nil), claims(map[string]any{"htu": "https://auth.example/userinfo"}))}, dpop.Request{}, dpop.ErrHTU},
		{"htu other host", []string{sign(hdr(nil), claims(map[string]any{"htu": "https://evil.example/oauth2/token"}))}, dpop.Request{}, dpop.ErrHTU},
		{"htu other scheme", []string{sign(hdr(nil), claims(map[string]any{"htu": "http://auth.example/oauth2/token"}))}, dpop.Request{}, dpop.ErrHTU},
		{"htu relative", []string{sign(hdr(nil), claims(map[string]any{"htu": "/oauth2/token"}))}, dpop.Request{}, dpop.ErrHTU},
		{"iat stale", []string{sign(hdr(nil), claims(map[string]any{"iat": t0.Add(-61 * time.Second).Unix()}))}, dpop.Request{}, dpop.ErrIAT},
		{"iat future", []string{sign(hdr(nil), claims(map[string]any{"iat": t0.Add(61 * time.Second).Unix()}))}, dpop.Request{}, dpop.ErrIAT},
		{"ath missing", []string{sign(hdr(nil), claims(nil))}, dpop.Request{AccessToken: "at"}, dpop.ErrATH},
		{"ath wrong", []string{sign(hdr(nil), claims(map[string]any{"ath": dpop.ATH("another")}))}, dpop.Request{AccessToken: "at"}, dpop.ErrATH},
		{"ath right", []string{sign(hdr(nil), claims(map[string]any{"ath": dpop.ATH("at")}))}, dpop.Request{AccessToken: "at"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := t0
			v := newVerifier(t, openStore(t), &now, false)
			req := tc.req
			req.Proofs, req.Method, req.URL = tc.proofs, "POST", tokenURL
			p, err := v.Verify(context.Background(), req)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Verify: got %v, want %v", err, tc.want)
			}
			if err != nil {
				var de *dpop.Error
				if !errors.As(err, &de) || de.Code != "invalid_dpop_proof" {
					t.Fatalf("error %v: want code invalid_dpop_proof", err)
				}
				return
			}
			want, _ := signer.JKT()
			if p.JKT != want {
				t.Fatalf("jkt %s, want %s", p.JKT, want)
			}
		})
	}
}

func TestReplayedJTI(t *testing.T) {
	now := t0
	store := openStore(t)
	// Two verifiers over one database stand for two instances.
	a, b := newVerifier(t, store, &now, false), newVerifier(t, store, &now, false)
	s := &dpop.Signer{Key: ecKey(t), Alg: jose.ES256, Now: func() time.Time { return t0 }}
	proof, err := s.Proof("POST", tokenURL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	req := dpop.Request{Proofs: []string{proof}, Method: "POST", URL: tokenURL}
	if _, err := a.Verify(context.Background(), req); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := b.Verify(context.Background(), req); !errors.Is(err, dpop.ErrReplay) {
		t.Fatalf("replay on another instance: got %v, want ErrReplay", err)
	}
	// A rejected proof does not spend its jti.
	bad := dpop.Request{Proofs: []string{mustProof(t, s, "GET")}, Method: "POST", URL: tokenURL}
	if _, err := a.Verify(context.Background(), bad); !errors.Is(err, dpop.ErrHTM) {
		t.Fatalf("got %v", err)
	}
}

func mustProof(t testing.TB, s *dpop.Signer, method string) string {
	t.Helper()
	p, err := s.Proof(method, tokenURL, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNonce(t *testing.T) {
	now := t0
	v := newVerifier(t, openStore(t), &now, true)
	s := &dpop.Signer{Key: ecKey(t), Alg: jose.ES256, Now: func() time.Time { return now }}
	verify := func(nonce string) error {
		p, err := s.Proof("POST", tokenURL, "", nonce)
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(context.Background(), dpop.Request{Proofs: []string{p}, Method: "POST", URL: tokenURL})
		return err
	}
	other := newVerifier(t, nil, &now, true)
	otherNonce, _ := dpop.New(dpop.Options{NonceRequired: true, NonceSecret: []byte("another-secret-of-32-bytes......"), Now: func() time.Time { return now }}, nil)
	cases := []struct {
		name  string
		nonce func() string
		want  error
	}{
		{"missing", func() string { return "" }, dpop.ErrNonce},
		{"garbage", func() string { return "not-a-nonce" }, dpop.ErrNonce},
		{"other secret", func() string { return otherNonce.Nonce() }, dpop.ErrNonce},
		{"current", func() string { return v.Nonce() }, nil},
		{"another instance's", func() string { return other.Nonce() }, nil},
		{"previous window", func() string { n := v.Nonce(); now = now.Add(5 * time.Minute); return n }, nil},
		{"stale (two windows old)", func() string { n := v.Nonce(); now = now.Add(10 * time.Minute); return n }, dpop.ErrNonce},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := verify(tc.nonce())
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var de *dpop.Error
			if err != nil && (!errors.As(err, &de) || de.Code != "use_dpop_nonce") {
				t.Fatalf("code: %v", err)
			}
		})
	}
}

func TestAlgorithms(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, s := range []*dpop.Signer{
		{Key: ecKey(t), Alg: jose.ES256},
		{Key: edKey, Alg: jose.EdDSA},
		{Key: rsaKey, Alg: jose.RS256},
		{Key: rsaKey, Alg: jose.PS256},
	} {
		t.Run(string(s.Alg), func(t *testing.T) {
			now := t0
			s.Now = func() time.Time { return t0 }
			v := newVerifier(t, nil, &now, false)
			p, err := v.Verify(context.Background(), dpop.Request{Proofs: []string{mustProof(t, s, "POST")}, Method: "POST", URL: tokenURL})
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := s.JKT(); p.JKT != want {
				t.Fatalf("jkt %s want %s", p.JKT, want)
			}
		})
	}
	if _, err := dpop.New(dpop.Options{Algs: []string{"HS256"}}, nil); err == nil {
		t.Fatal("HS256 must not be configurable")
	}
	if _, err := dpop.New(dpop.Options{Algs: []string{"none"}}, nil); err == nil {
		t.Fatal("none must not be configurable")
	}
}

// TestRFC7638Thumbprint checks the jkt against the RFC 7638 §3.1 example.
func TestRFC7638Thumbprint(t *testing.T) {
	n, _ := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	s := &dpop.Signer{Key: fakeRSA{&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}}}
	got, err := s.JKT()
	if err != nil || got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("jkt %q (%v)", got, err)
	}
}

type fakeRSA struct{ pub *rsa.PublicKey }

func (f fakeRSA) Public() crypto.PublicKey { return f.pub }
func (fakeRSA) Sign(_ io.Reader, _ []byte, _ crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("not used")
}
