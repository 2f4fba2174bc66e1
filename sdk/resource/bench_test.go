package resource

import (
	"net/http/httptest"
	"testing"

	"github.com/latchhq/latch/sdk/dpop"
)

// BenchmarkVerify is the per-request cost of the middleware once the JWKS
// is cached: one ES256 signature check and the claim rules (bearer), plus
// one proof parse and signature check (DPoP).
func BenchmarkVerify(b *testing.B) {
	is := newIssuer(b)
	v := is.verifier(nil)
	bearer := is.mint(is.claims(nil), "")
	key, _ := dpop.NewKey()
	bound := is.mint(is.claims(map[string]any{"cnf": map[string]string{"jkt": key.Thumbprint()}}), "")
	b.Run("bearer", func(b *testing.B) {
		r := httptest.NewRequest("GET", "https://api.example/v1/me", nil)
		r.Header.Set("Authorization", "Bearer "+bearer)
		for b.Loop() {
			if _, err := v.Verify(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dpop", func(b *testing.B) {
		r := httptest.NewRequest("GET", "https://api.example/v1/me", nil)
		r.Header.Set("Authorization", "DPoP "+bound)
		for b.Loop() {
			b.StopTimer()
			p, _ := key.Proof("GET", "https://api.example/v1/me", bound, "")
			r.Header.Set("DPoP", p)
			b.StartTimer()
			if _, err := v.Verify(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
