package app_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchhq/latch/config"
)

// An embedder that builds the server from an unvalidated configuration with
// a public issuer and no approval URL still gets no page that approves
// anyone as anyone; with a loopback issuer the page is there.
func TestDevConsentPageOnlyForLoopbackIssuer(t *testing.T) {
	for _, tc := range []struct {
		issuer string
		served bool
	}{
		{"https://id.example.com", false},
		{"https://10.1.2.3", false},
		{"http://127.0.0.1:8080", true},
		{"http://localhost:8080", true},
	} {
		t.Run(tc.issuer, func(t *testing.T) {
			a := open(t, t.TempDir(), func(c *config.Config) { c.Issuer = tc.issuer; c.Approval.URL = "" })
			rec := httptest.NewRecorder()
			a.Server().Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/dev/consent", nil))
			// The page answers an unknown token with its own HTML error.
			served := strings.Contains(rec.Body.String(), "Latch development consent")
			if served != tc.served || !served && rec.Code != http.StatusNotFound {
				t.Errorf("GET /dev/consent: %d %q, want the page served: %v", rec.Code, rec.Body.String(), tc.served)
			}
		})
	}
}
