package keys

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	jose3 "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite/token/jwt"
)

// Signer implements fosite's jwt.Signer over the manager's in-memory keys:
// it signs with the current key of its algorithm and verifies by the token's
// kid, so tokens signed before a rotation keep verifying until retirement.
type Signer struct {
	m   *Manager
	alg string
}

var _ jwt.Signer = (*Signer)(nil)

// Signer returns a fosite signer for alg (ES256 by default).
func (m *Manager) Signer(alg string) *Signer {
	if alg == "" {
		alg = ES256
	}
	return &Signer{m: m, alg: alg}
}

// Generate signs claims with the current key; header values (such as
// typ: at+jwt) are kept and the key's kid is added.
func (s *Signer) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	if claims == nil || header == nil {
		return "", "", errors.New("keys: claims and header are required")
	}
	alg := s.signingAlg(ctx, header)
	k, err := s.m.current(alg)
	if errors.Is(err, ErrNoKey) && alg != s.alg {
		// The first client asking for another algorithm creates its key;
		// Ensure reloads first, so a key another instance made is used.
		if err = s.m.Ensure(ctx, alg); err == nil {
			k, err = s.m.current(alg)
		}
	}
	if err != nil {
		return "", "", err
	}
	tok := jwt.NewWithClaims(jose3.SignatureAlgorithm(k.alg), claims)
	for name, v := range header.ToMap() {
		if name == "alg" || name == "kid" {
			continue
		}
		tok.Header[name] = v
	}
	raw, err := tok.SignedString(k.fosite)
	if err != nil {
		return "", "", fmt.Errorf("sign token: %w", err)
	}
	return raw, raw[strings.LastIndexByte(raw, '.')+1:], nil
}

// Decode verifies a token against the published key named by its kid. A
// token verified in the last minute is not verified again while its key is
// live; the returned token is shared and must not be modified.
func (s *Signer) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	now := time.Now()
	if t, kid, ok := s.m.verified.get(token, now); ok {
		if _, live := s.m.byKID(kid); live {
			return t, nil
		}
	}
	var kid string
	t, err := jwt.ParseWithClaims(token, jwt.MapClaims{}, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		k, ok := s.m.byKIDOrReload(ctx, kid)
		if !ok {
			return nil, fmt.Errorf("unknown signing key %q", kid)
		}
		if string(t.Method) != k.alg {
			return nil, fmt.Errorf("token alg %s does not match key %s", t.Method, k.alg)
		}
		return k.pub, nil
	})
	if err == nil {
		s.m.verified.put(token, kid, t, now)
	}
	return t, err
}

// Validate verifies a token and returns its signature.
func (s *Signer) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}

// GetSignature returns the third part of a compact JWT.
func (s *Signer) GetSignature(_ context.Context, token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("token is not a compact JWT")
	}
	return parts[2], nil
}

// Hash is SHA-256, the hash fosite uses for at_hash and c_hash with ES256
// and RS256 alike.
func (s *Signer) Hash(_ context.Context, in []byte) ([]byte, error) {
	h := sha256.Sum256(in)
	return h[:], nil
}

// GetSigningMethodLength is SHA-256's size.
func (s *Signer) GetSigningMethodLength(context.Context) int { return sha256.Size }

type idTokenAlgKey struct{}

// WithIDTokenAlg asks the signer to sign ID tokens made under ctx with alg
// (a client's id_token_signed_response_alg). fosite's OpenID strategy has a
// single signer, and the token endpoint's context is the one place that
// knows the client, so the choice travels there.
func WithIDTokenAlg(ctx context.Context, alg string) context.Context {
	return context.WithValue(ctx, idTokenAlgKey{}, alg)
}

// signingAlg is the signer's own algorithm, except for ID tokens under a
// context that asks for another one. Access tokens (typ at+jwt) keep the
// default, so resource servers need only one algorithm.
func (s *Signer) signingAlg(ctx context.Context, header jwt.Mapper) string {
	alg, _ := ctx.Value(idTokenAlgKey{}).(string)
	if alg == "" || alg == s.alg {
		return s.alg
	}
	if typ, _ := header.ToMap()["typ"].(string); typ == "at+jwt" {
		return s.alg
	}
	return alg
}
