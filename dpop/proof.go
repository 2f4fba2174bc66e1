package dpop

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchhq/latch/secret"
)

// Signer makes proofs with one key: what a DPoP client does. Latch uses it
// in tests and it documents the proof format by example.
type Signer struct {
	Key crypto.Signer
	Alg jose.SignatureAlgorithm
	Now func() time.Time
}

// JKT is the thumbprint a token bound to this key carries in cnf.jkt.
func (s *Signer) JKT() (string, error) {
	jwk := jose.JSONWebKey{Key: s.Key.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// Proof signs a proof for method and url; accessToken and nonce are
// included when not empty.
func (s *Signer) Proof(method, url, accessToken, nonce string) (string, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	c := map[string]any{"jti": secret.Random(16), "htm": method, "htu": url, "iat": now().Unix()}
	if accessToken != "" {
		c["ath"] = ATH(accessToken)
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	return s.Sign(map[jose.HeaderKey]any{"typ": "dpop+jwt"}, c)
}

// Sign signs arbitrary claims with the public jwk embedded; extra header
// values override the defaults (tests use it to break one rule at a time).
func (s *Signer) Sign(header map[jose.HeaderKey]any, claims any) (string, error) {
	opts := &jose.SignerOptions{EmbedJWK: true, ExtraHeaders: map[jose.HeaderKey]any{}}
	for k, v := range header {
		opts.ExtraHeaders[k] = v
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: s.Alg, Key: s.Key}, opts)
	if err != nil {
		return "", fmt.Errorf("dpop: signer: %w", err)
	}
	payload, err := jsonMarshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := sig.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("dpop: sign: %w", err)
	}
	return obj.CompactSerialize()
}

// jsonMarshal passes raw bytes through, so a test can sign any payload.
func jsonMarshal(v any) ([]byte, error) {
	if b, ok := v.([]byte); ok {
		return b, nil
	}
	return json.Marshal(v)
}
