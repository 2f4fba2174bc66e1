// Package dpop verifies RFC 9449 DPoP proofs: the proof's form (typ, alg,
// embedded public jwk, signature), its binding to the HTTP request (htm,
// htu) and to the access token (ath), its freshness (iat window, single-use
// jti in a replay store shared by every instance) and, when required, a
// server nonce that every instance can check without shared state.
package dpop

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// HeaderName is the request header carrying a proof and NonceHeader the
// response header carrying a fresh server nonce.
const (
	HeaderName  = "DPoP"
	NonceHeader = "DPoP-Nonce"
)

// DefaultAlgs are the asymmetric algorithms accepted for proofs; none and
// the HMAC family can never be configured.
var DefaultAlgs = []string{"ES256", "ES384", "EdDSA", "RS256", "PS256"}

// Error is a proof failure with its OAuth error code: invalid_dpop_proof, or
// use_dpop_nonce when the client must retry with the nonce the server sends.
type Error struct {
	Code string
	Desc string
}

func (e *Error) Error() string { return e.Code + ": " + e.Desc }

// The rules a proof can break; returned errors wrap exactly one of these.
var (
	ErrMissing   = &Error{"invalid_dpop_proof", "a single DPoP proof header is required"}
	ErrMultiple  = &Error{"invalid_dpop_proof", "more than one DPoP header"}
	ErrMalformed = &Error{"invalid_dpop_proof", "the proof is not a compact JWS"}
	ErrTyp       = &Error{"invalid_dpop_proof", "typ must be dpop+jwt"}
	ErrAlg       = &Error{"invalid_dpop_proof", "alg is not an allowed asymmetric algorithm"}
	ErrJWK       = &Error{"invalid_dpop_proof", "jwk must be a public key"}
	ErrSignature = &Error{"invalid_dpop_proof", "signature does not verify with the embedded jwk"}
	ErrClaims    = &Error{"invalid_dpop_proof", "claims are malformed or missing"}
	ErrHTM       = &Error{"invalid_dpop_proof", "htm does not match the request method"}
	ErrHTU       = &Error{"invalid_dpop_proof", "htu does not match the request URL"}
	ErrIAT       = &Error{"invalid_dpop_proof", "iat is outside the accepted window"}
	ErrReplay    = &Error{"invalid_dpop_proof", "jti has already been used"}
	ErrATH       = &Error{"invalid_dpop_proof", "ath does not match the access token"}
	ErrNonce     = &Error{"use_dpop_nonce", "a current server nonce is required"}
)

// ReplayStore records a proof's jti until exp and fails with an error for
// which IsReplay is true when it was seen before; storage.Store.MarkJTI is
// one, and being in the database makes it shared by every instance.
type ReplayStore interface {
	MarkJTI(ctx context.Context, purpose, jti string, exp time.Time) error
}

// Options configure a Verifier.
type Options struct {
	// Algs are the accepted proof algorithms (default DefaultAlgs).
	Algs []string
	// IATWindow is how far a proof's iat may be from now, either way.
	IATWindow time.Duration
	// NonceRequired makes every proof carry a server nonce.
	NonceRequired bool
	// NonceSecret derives nonces; every instance must share it.
	NonceSecret []byte
	// NonceWindow is how long one nonce is issued; the previous window's
	// nonce is accepted too, so a nonce lives between one and two windows.
	NonceWindow time.Duration
	// IsReplay recognises the replay store's reuse error.
	IsReplay func(error) bool
	Now      func() time.Time
}

// Verifier checks proofs. It is safe for concurrent use.
type Verifier struct {
	opt    Options
	algs   []jose.SignatureAlgorithm
	replay ReplayStore
}

// New builds a verifier; unknown or symmetric algorithms are refused.
func New(opt Options, replay ReplayStore) (*Verifier, error) {
	if len(opt.Algs) == 0 {
		opt.Algs = DefaultAlgs
	}
	v := &Verifier{replay: replay}
	for _, a := range opt.Algs {
		if !slices.Contains(supportedAlgs, a) {
			return nil, fmt.Errorf("dpop: algorithm %q is not supported", a)
		}
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	if opt.IATWindow <= 0 {
		opt.IATWindow = time.Minute
	}
	if opt.NonceWindow <= 0 {
		opt.NonceWindow = 5 * time.Minute
	}
	if opt.NonceRequired && len(opt.NonceSecret) < 16 {
		return nil, errors.New("dpop: nonces need a secret of at least 16 bytes")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.IsReplay == nil {
		opt.IsReplay = func(error) bool { return false }
	}
	v.opt = opt
	return v, nil
}

var supportedAlgs = []string{"ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// Algs are the accepted algorithms, for discovery.
func (v *Verifier) Algs() []string { return slices.Clone(v.opt.Algs) }

// NonceRequired says whether proofs must carry a server nonce.
func (v *Verifier) NonceRequired() bool { return v.opt.NonceRequired }

// Request is what a proof must match.
type Request struct {
	// Proofs are every value of the DPoP header (exactly one is allowed).
	Proofs []string
	Method string
	// URL is the endpoint as clients address it (issuer-based, not taken
	// from Host headers); query and fragment are ignored.
	URL string
	// AccessToken, at resource endpoints, must hash to the proof's ath.
	AccessToken string
}

// Proof is a verified proof.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof key.
	JKT string
	JTI string
	IAT time.Time
}

type claims struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	IAT   json.RawMessage `json:"iat"`
	ATH   *string         `json:"ath"`
	Nonce *string         `json:"nonce"`
}

// maxProofLen bounds work on hostile input; real proofs are under 2 KiB
// even with RSA-4096 keys.
const maxProofLen = 8 << 10

// Verify checks a proof in the order of RFC 9449 §4.3 and, only when every
// check passes, spends its jti, so a rejected proof never burns one.
func (v *Verifier) Verify(ctx context.Context, r Request) (*Proof, error) {
	switch {
	case len(r.Proofs) == 0 || r.Proofs[0] == "":
		return nil, ErrMissing
	case len(r.Proofs) > 1:
		return nil, ErrMultiple
	}
	raw := r.Proofs[0]
	if len(raw) > maxProofLen || strings.Count(raw, ".") != 2 {
		return nil, ErrMalformed
	}
	hdr, err := rawHeader(raw)
	if err != nil {
		return nil, err
	}
	if typ, _ := hdr["typ"].(string); typ != "dpop+jwt" {
		return nil, ErrTyp
	}
	alg, _ := hdr["alg"].(string)
	if !slices.Contains(v.opt.Algs, alg) {
		return nil, fmt.Errorf("%w: %q", ErrAlg, alg)
	}
	jwkRaw, ok := hdr["jwk"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: no jwk header", ErrJWK)
	}
	for _, m := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
		if _, has := jwkRaw[m]; has {
			return nil, fmt.Errorf("%w: private member %q present", ErrJWK, m)
		}
	}
	jws, err := jose.ParseSignedCompact(raw, v.algs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, ErrMalformed
	}
	jwk := jws.Signatures[0].Protected.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return nil, ErrJWK
	}
	if _, sym := jwk.Key.([]byte); sym {
		return nil, ErrJWK
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return nil, ErrSignature
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrClaims, err)
	}
	if c.JTI == "" || len(c.JTI) > 256 || c.HTM == "" || c.HTU == "" {
		return nil, fmt.Errorf("%w: jti, htm and htu are required", ErrClaims)
	}
	var iatSec json.Number
	if err := json.Unmarshal(c.IAT, &iatSec); err != nil {
		return nil, fmt.Errorf("%w: iat must be a number", ErrClaims)
	}
	iatF, err := iatSec.Float64()
	if err != nil || iatF < 0 || iatF > 1<<40 {
		return nil, fmt.Errorf("%w: iat must be a number", ErrClaims)
	}
	if c.HTM != r.Method {
		return nil, ErrHTM
	}
	if !sameURL(c.HTU, r.URL) {
		return nil, ErrHTU
	}
	if v.opt.NonceRequired && (c.Nonce == nil || !v.validNonce(*c.Nonce)) {
		return nil, ErrNonce
	}
	now := v.opt.Now()
	iat := time.Unix(int64(iatF), 0)
	if iat.Before(now.Add(-v.opt.IATWindow)) || iat.After(now.Add(v.opt.IATWindow)) {
		return nil, ErrIAT
	}
	if r.AccessToken != "" {
		if c.ATH == nil || !hmac.Equal([]byte(*c.ATH), []byte(ATH(r.AccessToken))) {
			return nil, ErrATH
		}
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, ErrJWK
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	// Scoping the jti by key means nobody can burn another client's jti;
	// a replayed proof carries its own key and is still caught.
	exp := iat.Add(v.opt.IATWindow)
	if now.After(iat) {
		exp = now.Add(v.opt.IATWindow)
	}
	if v.replay != nil {
		if err := v.replay.MarkJTI(ctx, "dpop", jkt+"."+c.JTI, exp); err != nil {
			if v.opt.IsReplay(err) {
				return nil, ErrReplay
			}
			return nil, fmt.Errorf("dpop: replay store: %w", err)
		}
	}
	return &Proof{JKT: jkt, JTI: c.JTI, IAT: iat}, nil
}

// rawHeader decodes the protected header before go-jose does, so a private
// or missing jwk and a wrong typ get their own precise error.
func rawHeader(raw string) (map[string]any, error) {
	b, err := base64.RawURLEncoding.DecodeString(raw[:strings.IndexByte(raw, '.')])
	if err != nil {
		return nil, ErrMalformed
	}
	var hdr map[string]any
	if err := json.Unmarshal(b, &hdr); err != nil {
		return nil, ErrMalformed
	}
	return hdr, nil
}

// sameURL compares scheme, host and path (RFC 9449 §4.3 item 9, with the
// RFC 3986 §6.2.2-§6.2.3 normalisation of case and default ports).
func sameURL(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil || !ua.IsAbs() || ua.Host == "" {
		return false
	}
	norm := func(u *url.URL) string {
		scheme := strings.ToLower(u.Scheme)
		host := strings.ToLower(u.Hostname())
		port := u.Port()
		if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
			port = ""
		}
		if port != "" {
			host += ":" + port
		}
		p := u.EscapedPath()
		if p == "" {
			p = "/"
		}
		return scheme + "://" + host + p
	}
	return norm(ua) == norm(ub)
}

// ATH is the ath claim for an access token: base64url(SHA-256(token)).
func ATH(accessToken string) string {
	h := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Nonce is the nonce of the current window, the same on every instance.
func (v *Verifier) Nonce() string { return v.nonceAt(v.window(v.opt.Now())) }

func (v *Verifier) window(t time.Time) int64 { return t.UnixNano() / int64(v.opt.NonceWindow) }

func (v *Verifier) nonceAt(w int64) string {
	m := hmac.New(sha256.New, v.opt.NonceSecret)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(w))
	m.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

func (v *Verifier) validNonce(n string) bool {
	w := v.window(v.opt.Now())
	return hmac.Equal([]byte(n), []byte(v.nonceAt(w))) || hmac.Equal([]byte(n), []byte(v.nonceAt(w-1)))
}
