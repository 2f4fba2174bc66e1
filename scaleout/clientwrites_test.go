package scaleout_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
)

// TestRaceManagementWritesAcrossInstances rotates a client's secret and
// removes one of its redirect URIs through instance A while a PATCH of its
// name goes through instance B, whose client cache holds the client as it
// was before. Every round, afterwards: the new secret works, the old one
// does not, the removed URI stays removed and B's name change stands. On
// even rounds B's PATCH waits for A (B's cached copy is then certainly
// stale); on odd rounds they start together.
//
// The verdict comes from a third instance with its cache off, so it sees
// the database, not a copy.
func TestRaceManagementWritesAcrossInstances(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(*testing.T) string) {
		shared := dsn(t)
		if shared == "" {
			shared = "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
		}
		a := latchtest.Start(t, latchtest.Options{DSN: shared})
		b := latchtest.Start(t, latchtest.Options{DSN: shared, Configure: func(c *config.Config) {
			c.Database.ClientCacheTTL = time.Minute // wide enough that no round outlives it
		}})
		judge := latchtest.Start(t, latchtest.Options{DSN: shared, Configure: func(c *config.Config) {
			c.Database.ClientCacheTTL = 0
		}})
		const cb = "https://client.example/cb"
		cl := a.RegisterClient(map[string]any{
			"client_name": "Race", "redirect_uris": []string{cb},
			"grant_types": []string{"authorization_code", "client_credentials"},
		})
		secret := cl.Secret
		for round := range rounds {
			extra := fmt.Sprintf("https://client.example/extra-%d", round)
			if r := api(t, a, "PATCH", "/api/clients/"+cl.ID, map[string]any{"redirect_uris": []string{cb, extra}}); r.status != 200 {
				t.Fatalf("round %d: add redirect URI: %s", round, r)
			}
			// B reads the client as it is now, and caches it.
			if r := clientCredentials(t, b.URL, cl.ID, secret); r.status != 200 {
				t.Fatalf("round %d: B with the current secret: %s", round, r)
			}
			if r := api(t, b, "GET", "/api/clients/"+cl.ID, nil); r.status != 200 {
				t.Fatalf("round %d: GET on B: %s", round, r)
			}

			name := fmt.Sprintf("Race round %d", round)
			aDone := make(chan struct{})
			var rotated, removed, renamed result
			go func() {
				defer close(aDone)
				rotated = api(t, a, "POST", "/api/clients/"+cl.ID+"/secret", map[string]any{})
				removed = api(t, a, "PATCH", "/api/clients/"+cl.ID, map[string]any{"redirect_uris": []string{cb}})
			}()
			if round%2 == 0 {
				<-aDone
			}
			renamed = api(t, b, "PATCH", "/api/clients/"+cl.ID, map[string]any{"client_name": name})
			<-aDone
			if rotated.status != 200 || removed.status != 200 || renamed.status != 200 {
				t.Fatalf("round %d: rotate on A %s, remove URI on A %s, rename on B %s", round, rotated, removed, renamed)
			}
			old := secret
			secret = str(t, rotated, "client_secret")

			if r := clientCredentials(t, judge.URL, cl.ID, secret); r.status != 200 {
				t.Fatalf("round %d: the secret rotated on A does not work: %s", round, r)
			}
			if r := clientCredentials(t, judge.URL, cl.ID, old); r.status != http.StatusUnauthorized {
				t.Fatalf("round %d: the secret replaced on A works again after B's PATCH: %s", round, r)
			}
			got := api(t, judge, "GET", "/api/clients/"+cl.ID, nil)
			uris, _ := got.body["redirect_uris"].([]any)
			if !slices.Equal(uris, []any{cb}) || got.body["client_name"] != name {
				t.Fatalf("round %d: stored redirect_uris %v name %v, want [%s] and %q", round, uris, got.body["client_name"], cb, name)
			}
		}
	})
}

// api calls env's admin API from any goroutine (env.API may only fail the
// test from the test's own).
func api(t *testing.T, env *latchtest.Env, method, path string, body any) result {
	var rd *bytes.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, env.URL+path, nil)
	if rd != nil {
		req, _ = http.NewRequest(method, env.URL+path, rd)
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-API-Key", latchtest.APIKey)
	return do(t, req)
}

func clientCredentials(t *testing.T, base, id, secret string) result {
	return post(t, base+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, latchtest.Client{ID: id, Secret: secret})
}
