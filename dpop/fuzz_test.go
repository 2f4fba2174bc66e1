package dpop_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"math/big"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchhq/latch/dpop"
)

// fixedKey is deterministic so the seed corpus is stable across runs.
func fixedKey() *ecdsa.PrivateKey {
	d := new(big.Int).SetBytes([]byte("latch-dpop-fuzz-key-0123456789ab"))
	k := &ecdsa.PrivateKey{D: d}
	k.Curve = elliptic.P256()
	k.X, k.Y = elliptic.P256().ScalarBaseMult(d.Bytes())
	return k
}

type memReplay map[string]bool

func (m memReplay) MarkJTI(_ context.Context, _, jti string, _ time.Time) error {
	if m[jti] {
		return errReplay
	}
	m[jti] = true
	return nil
}

var errReplay = errors.New("replay")

// FuzzDPoPProof feeds arbitrary header values to the parser and verifier:
// nothing may panic, every failure must be a *dpop.Error with a known code,
// and anything accepted must have been signed by the one key that signed
// the valid seeds (no mutation may forge a proof).
func FuzzDPoPProof(f *testing.F) {
	key := fixedKey()
	s := &dpop.Signer{Key: key, Alg: jose.ES256, Now: func() time.Time { return t0 }}
	wantJKT, err := s.JKT()
	if err != nil {
		f.Fatal(err)
	}
	valid, err := s.Proof("POST", tokenURL, "", "")
	if err != nil {
		f.Fatal(err)
	}
	withATH, _ := s.Proof("POST", tokenURL, "tok", "")
	f.Add(valid, "")
	f.Add(withATH, "tok")
	f.Add("", "")
	f.Add("a.b.c", "")
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiZHBvcCtqd3QifQ.e30.", "")
	f.Add(valid+"x", "")
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Im9jdCIsImsiOiJBQUEifX0.e30.AA", "")
	f.Fuzz(func(t *testing.T, proof, token string) {
		now := t0
		v, err := dpop.New(dpop.Options{IATWindow: time.Minute, Now: func() time.Time { return now },
			IsReplay: func(err error) bool { return errors.Is(err, errReplay) }}, memReplay{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := v.Verify(context.Background(), dpop.Request{Proofs: []string{proof}, Method: "POST", URL: tokenURL, AccessToken: token})
		if err != nil {
			var de *dpop.Error
			if !errors.As(err, &de) || (de.Code != "invalid_dpop_proof" && de.Code != "use_dpop_nonce") {
				t.Fatalf("error without an OAuth code: %v", err)
			}
			return
		}
		if p.JKT != wantJKT {
			t.Fatalf("accepted a proof from an unknown key %s: %q", p.JKT, proof)
		}
	})
}
