// Package dpop makes and checks DPoP proofs (RFC 9449): Key signs proofs for
// a client (sdk/tokenagent), Parse checks a proof's form and signature for a
// resource server (sdk/resource), which then applies the request-bound rules.
//
// It repeats a small part of Latch's own dpop package on purpose: the SDK is
// its own module and must not import the server.
package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is a client's proof-of-possession key.
type Key struct {
	signer jose.Signer
	jwk    jose.JSONWebKey // private
	jkt    string
	// Now is the proofs' clock; nil is time.Now.
	Now func() time.Time
}

// NewKey makes a fresh P-256 key (ES256, the algorithm every DPoP server
// supports).
func NewKey() (*Key, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dpop: generate key: %w", err)
	}
	return KeyFrom(k, jose.ES256)
}

// KeyFrom wraps an existing private key (*ecdsa.PrivateKey, *rsa.PrivateKey
// or ed25519.PrivateKey) with the algorithm to sign with.
func KeyFrom(priv crypto.Signer, alg jose.SignatureAlgorithm) (*Key, error) {
	jwk := jose.JSONWebKey{Key: priv, Algorithm: string(alg)}
	pub := jwk.Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("dpop: thumbprint: %w", err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: priv},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		return nil, fmt.Errorf("dpop: signer: %w", err)
	}
	return &Key{signer: s, jwk: jwk, jkt: base64.RawURLEncoding.EncodeToString(tp)}, nil
}

// ParseKey reads a key written by MarshalPrivate, so a client can keep its
// key (and the tokens bound to it) across restarts.
func ParseKey(b []byte) (*Key, error) {
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(b, &jwk); err != nil {
		return nil, fmt.Errorf("dpop: parse key: %w", err)
	}
	signer, ok := jwk.Key.(crypto.Signer)
	if !ok || jwk.IsPublic() {
		return nil, errors.New("dpop: parse key: not a private signing key")
	}
	alg := jose.SignatureAlgorithm(jwk.Algorithm)
	if alg == "" {
		alg = jose.ES256
	}
	return KeyFrom(signer, alg)
}

// MarshalPrivate writes the private key as a JWK: store it like a password.
func (k *Key) MarshalPrivate() ([]byte, error) { return json.Marshal(k.jwk) }

// Thumbprint is the RFC 7638 thumbprint a token bound to this key carries in
// cnf.jkt (and the dpop_jkt authorization parameter).
func (k *Key) Thumbprint() string { return k.jkt }

// Proof signs a proof for one request: method and url (query and fragment
// are dropped, as RFC 9449 §4.2 requires of htu), with ath when accessToken
// is set and nonce when the server asked for one.
func (k *Key) Proof(method, url, accessToken, nonce string) (string, error) {
	now := time.Now
	if k.Now != nil {
		now = k.Now
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("dpop: random: %w", err)
	}
	if i := strings.IndexAny(url, "?#"); i >= 0 {
		url = url[:i]
	}
	c := map[string]any{"jti": base64.RawURLEncoding.EncodeToString(jti), "htm": method, "htu": url, "iat": now().Unix()}
	if accessToken != "" {
		c["ath"] = ATH(accessToken)
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	obj, err := k.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("dpop: sign: %w", err)
	}
	return obj.CompactSerialize()
}

// ATH is the ath claim for an access token: base64url(SHA-256(token)).
func ATH(accessToken string) string {
	h := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Algs are the proof algorithms Parse accepts: asymmetric only (RFC 9449
// §4.2 forbids MACs and none).
var Algs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.EdDSA}

// Proof is a proof whose form and signature are valid. The request-bound
// rules (htm, htu, iat window, ath, replay, binding) are the caller's.
type Proof struct {
	JKT      string // thumbprint of the embedded key
	JTI      string
	Method   string // htm
	URL      string // htu
	IssuedAt time.Time
	ATH      string
	Nonce    string
}

// MaxLen bounds work on hostile input; real proofs are under 2 KiB even
// with RSA-4096 keys.
const MaxLen = 8 << 10

// ErrMalformed is any proof that is not a well-formed, correctly signed
// dpop+jwt with a public jwk.
var ErrMalformed = errors.New("dpop: malformed proof")

// Parse checks a proof's form (RFC 9449 §4.3 items 2-6): one JWS, typ
// dpop+jwt, an asymmetric alg, a public jwk that verifies the signature,
// and jti, htm, htu and iat present.
func Parse(raw string) (*Proof, error) {
	if raw == "" || len(raw) > MaxLen || strings.Count(raw, ".") != 2 {
		return nil, ErrMalformed
	}
	jws, err := jose.ParseSignedCompact(raw, Algs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, ErrMalformed
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return nil, fmt.Errorf("%w: typ must be dpop+jwt", ErrMalformed)
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return nil, fmt.Errorf("%w: the jwk header must hold a public key", ErrMalformed)
	}
	if _, sym := jwk.Key.([]byte); sym {
		return nil, fmt.Errorf("%w: symmetric jwk", ErrMalformed)
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return nil, fmt.Errorf("%w: bad signature", ErrMalformed)
	}
	var c struct {
		JTI   string          `json:"jti"`
		HTM   string          `json:"htm"`
		HTU   string          `json:"htu"`
		IAT   json.RawMessage `json:"iat"`
		ATH   string          `json:"ath"`
		Nonce string          `json:"nonce"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: claims", ErrMalformed)
	}
	if c.JTI == "" || len(c.JTI) > 256 || c.HTM == "" || c.HTU == "" || c.IAT == nil {
		return nil, fmt.Errorf("%w: jti, htm, htu and iat are required", ErrMalformed)
	}
	// A raw number, not json.Number: that would also take "123" quoted.
	iat, err := strconv.ParseFloat(string(c.IAT), 64)
	if err != nil || iat < 0 || iat > 1<<40 {
		return nil, fmt.Errorf("%w: iat must be a number", ErrMalformed)
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, ErrMalformed
	}
	return &Proof{
		JKT: base64.RawURLEncoding.EncodeToString(tp), JTI: c.JTI, Method: c.HTM, URL: c.HTU,
		IssuedAt: time.Unix(int64(iat), 0), ATH: c.ATH, Nonce: c.Nonce,
	}, nil
}
