package dpop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

func TestProofRoundTrip(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := k.Proof("POST", "https://a.example/token?x=1#f", "tok", "n")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.JKT != k.Thumbprint() || p.Method != "POST" || p.URL != "https://a.example/token" || p.ATH != ATH("tok") || p.Nonce != "n" || p.JTI == "" {
		t.Fatalf("%+v", p)
	}
	b, _ := k.MarshalPrivate()
	k2, err := ParseKey(b)
	if err != nil || k2.Thumbprint() != k.Thumbprint() {
		t.Fatal(err)
	}
	pub, _ := json.Marshal(k.jwk.Public())
	if _, err := ParseKey(pub); err == nil {
		t.Fatal("a public key was accepted as a signing key")
	}
}

func TestParseRefuses(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sign := func(alg jose.SignatureAlgorithm, key any, opts *jose.SignerOptions, claims string) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := s.Sign([]byte(claims))
		r, _ := o.CompactSerialize()
		return r
	}
	ok := `{"jti":"j","htm":"GET","htu":"https://a.example/","iat":1700000000}`
	typ := func(o *jose.SignerOptions, v string) *jose.SignerOptions { return o.WithType(jose.ContentType(v)) }
	cases := map[string]string{
		"HMAC":         sign(jose.HS256, []byte(strings.Repeat("k", 32)), typ(&jose.SignerOptions{}, "dpop+jwt"), ok),
		"no jwk":       sign(jose.ES256, priv, typ(&jose.SignerOptions{}, "dpop+jwt"), ok),
		"wrong typ":    sign(jose.ES256, priv, typ(&jose.SignerOptions{EmbedJWK: true}, "JWT"), ok),
		"no jti":       sign(jose.ES256, priv, typ(&jose.SignerOptions{EmbedJWK: true}, "dpop+jwt"), `{"htm":"GET","htu":"https://a.example/","iat":1}`),
		"iat a string": sign(jose.ES256, priv, typ(&jose.SignerOptions{EmbedJWK: true}, "dpop+jwt"), `{"jti":"j","htm":"GET","htu":"https://a.example/","iat":"1"}`),
		"garbage":      "a.b.c",
	}
	if _, err := Parse(sign(jose.ES256, priv, typ(&jose.SignerOptions{EmbedJWK: true}, "dpop+jwt"), ok)); err != nil {
		t.Fatalf("control: %v", err)
	}
	for name, raw := range cases {
		if _, err := Parse(raw); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
