package server_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/latchtest"
)

// An authorization code redeems once. A replay — sequential, or concurrent
// with the first redemption — gets invalid_grant and revokes what the code
// produced; a failed attempt (wrong PKCE verifier) does not use it up.
func TestCodeRedeemsOnce(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	web := env.CreateClient(clients.Metadata{ClientName: "web", RedirectURIs: []string{"https://client.example/cb"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scope: "openid offline_access"})
	code := func(verifier string) string {
		sum := sha256.Sum256([]byte(verifier))
		q := url.Values{"response_type": {"code"}, "client_id": {web.ID}, "redirect_uri": {web.RedirectURIs[0]},
			"scope": {"openid offline_access"}, "state": {"state-0123456789"},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
		loc := env.Authorize(latchtest.NewBrowser(t), env.URL+"/oauth2/authorize?"+q.Encode(), map[string]any{"user": "alice"})
		return loc.Query().Get("code")
	}
	exchange := func(c, verifier string) (int, map[string]any) {
		resp, out := postForm(t, env.URL+"/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {c},
			"redirect_uri": {web.RedirectURIs[0]}, "code_verifier": {verifier}}, web.ID, web.Secret)
		return resp.StatusCode, out
	}
	verifier := "v-" + strings.Repeat("a", 50)

	t.Run("sequential replay", func(t *testing.T) {
		c := code(verifier)
		if status, out := exchange(c, "v-"+strings.Repeat("b", 50)); status != http.StatusBadRequest {
			t.Fatalf("wrong verifier: %d %v", status, out)
		}
		status, tok := exchange(c, verifier)
		if status != http.StatusOK {
			t.Fatalf("first redemption after a failed attempt: %d %v", status, tok)
		}
		if status, out := exchange(c, verifier); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
			t.Fatalf("replay: %d %v, want invalid_grant", status, out)
		}
		if got := introspect(t, env, tok["access_token"].(string), web.ID, web.Secret); got["active"] != false {
			t.Errorf("access token of a replayed code still active")
		}
	})

	t.Run("concurrent redemptions", func(t *testing.T) {
		c := code(verifier)
		const n = 6
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			statuses = map[int]int{}
			tokens   []string
		)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, out := exchange(c, verifier)
				mu.Lock()
				defer mu.Unlock()
				statuses[status]++
				if status == http.StatusOK {
					tokens = append(tokens, out["access_token"].(string))
				} else if out["error"] != "invalid_grant" {
					t.Errorf("loser: %d %v, want invalid_grant", status, out)
				}
			}()
		}
		wg.Wait()
		if statuses[http.StatusOK] != 1 || statuses[http.StatusBadRequest] != n-1 {
			t.Fatalf("outcomes %v, want one 200 and %d invalid_grant", statuses, n-1)
		}
		if got := introspect(t, env, tokens[0], web.ID, web.Secret); got["active"] != false {
			t.Errorf("winner's access token still active after concurrent replays")
		}
	})
}
