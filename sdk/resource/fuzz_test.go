package resource

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchhq/latch/sdk/dpop"
)

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{"Bearer abc", "DPoP a.b.c", "bearer  x==", "Basic x", "Bearer", "Bearer a=b", "", "Bearer " + strings.Repeat("a", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		scheme, tok, err := ParseAuthorization([]string{h})
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("not an *Error: %v", err)
			}
			return
		}
		if scheme != "Bearer" && scheme != "DPoP" || tok == "" || !isToken68(tok) || strings.ContainsAny(tok, " \t\r\n") {
			t.Fatalf("accepted %q as %q %q", h, scheme, tok)
		}
	})
}

// FuzzVerify feeds arbitrary tokens and proofs to a verifier whose issuer
// signs nothing the fuzzer can produce: nothing may panic, and nothing may
// pass.
func FuzzVerify(f *testing.F) {
	is := newIssuer(f)
	v, _ := New(Config{Issuer: is.srv.URL, Resource: api})
	f.Add("eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.e30.AAAA", "")
	f.Add("a.b.c", "x.y.z")
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.", "")
	f.Fuzz(func(t *testing.T, tok, proof string) {
		r := httptest.NewRequest("GET", "https://api.example/v1", nil)
		r.Header.Set("Authorization", "DPoP "+tok)
		if proof != "" {
			r.Header.Set("DPoP", proof)
		}
		if c, err := v.Verify(r); err == nil {
			t.Fatalf("accepted %q: %+v", tok, c)
		}
	})
}

func FuzzClaims(f *testing.F) {
	f.Add(`{"iss":"x","aud":["a"],"exp":1,"scope":"a b","cnf":{"jkt":"k"}}`)
	f.Add(`{"aud":1,"exp":"x"}`)
	f.Add(`{"cnf":[],"scope":null,"nbf":1e300}`)
	f.Fuzz(func(t *testing.T, s string) {
		raw := map[string]any{}
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if dec.Decode(&raw) != nil {
			return
		}
		c, err := claimsFrom(raw)
		if err == nil && c.Raw == nil {
			t.Fatal("claims without Raw")
		}
	})
}

func FuzzDPoPParse(f *testing.F) {
	k, _ := dpop.NewKey()
	p, _ := k.Proof("GET", "https://a.example/x", "tok", "n")
	f.Add(p)
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		pr, err := dpop.Parse(s)
		if err == nil && (pr.JTI == "" || pr.JKT == "" || pr.Method == "") {
			t.Fatalf("parsed an incomplete proof: %+v", pr)
		}
	})
}
