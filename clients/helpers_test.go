package clients_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchhq/latch/latchtest"
)

func clientCredentialsToken(t *testing.T, env *latchtest.Env, id, secret string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", env.URL+"/oauth2/token", strings.NewReader("grant_type=client_credentials&scope=profile"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	tok, _ := out["access_token"].(string)
	if tok == "" {
		t.Fatalf("client_credentials: %d %v", resp.StatusCode, out)
	}
	return tok
}

// introspectActive asks with the admin key whether a token is active.
func introspectActive(t *testing.T, env *latchtest.Env, token string) bool {
	t.Helper()
	req, _ := http.NewRequest("POST", env.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-API-Key", latchtest.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return out["active"] == true
}
