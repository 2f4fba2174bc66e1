package approval_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/latchhq/latch/latchtest"
)

// session starts an authorization request and returns the session id.
func session(t *testing.T, env *latchtest.Env) string {
	t.Helper()
	c := env.NativeClient()
	u := env.URL + "/oauth2/authorize?response_type=code&client_id=" + c.ID +
		"&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=openid&state=state-0123456789" +
		"&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
	return env.StartAuthorize(latchtest.NewBrowser(t), u)
}

func TestAuthSessionStatusCodes(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	env := latchtest.Start(t, latchtest.Options{Now: func() time.Time { return clock() }})
	approve := map[string]any{"user": "u1"}

	id := session(t, env)
	cases := []struct {
		name         string
		key          string
		method, path string
		body         any
		status       int
		error        string
	}{
		{"no key", "", "GET", "/api/auth_session/" + id, nil, 401, "unauthorized"},
		{"wrong key", "latch_wrong", "POST", "/api/auth_session/" + id + "/approve", approve, 401, "unauthorized"},
		{"unknown session read", latchtest.APIKey, "GET", "/api/auth_session/nope", nil, 404, "not_found"},
		{"unknown session approve", latchtest.APIKey, "POST", "/api/auth_session/nope/approve", approve, 404, "not_found"},
		{"unknown session deny", latchtest.APIKey, "POST", "/api/auth_session/nope/deny", nil, 404, "not_found"},
		{"user missing", latchtest.APIKey, "POST", "/api/auth_session/" + id + "/approve", map[string]any{}, 400, "invalid_request"},
		{"unknown field", latchtest.APIKey, "POST", "/api/auth_session/" + id + "/approve", map[string]any{"user": "u", "usr": "x"}, 400, "invalid_request"},
		{"scope not requested", latchtest.APIKey, "POST", "/api/auth_session/" + id + "/approve", map[string]any{"user": "u", "scopes": []string{"email"}}, 400, "invalid_request"},
		{"approve", latchtest.APIKey, "POST", "/api/auth_session/" + id + "/approve", approve, 200, ""},
		{"approve twice", latchtest.APIKey, "POST", "/api/auth_session/" + id + "/approve", approve, 409, "conflict"},
		{"deny after approve", latchtest.APIKey, "POST", "/api/auth_session/" + id + "/deny", nil, 409, "conflict"},
	}
	for _, tc := range cases {
		status, out := env.APIWithKey(tc.key, tc.method, tc.path, tc.body)
		if status != tc.status || (tc.error != "" && (out["error"] != tc.error || out["error_description"] == nil)) {
			t.Errorf("%s: %d %v, want %d %s", tc.name, status, out, tc.status, tc.error)
		}
	}

	req, _ := http.NewRequest("POST", env.URL+"/api/auth_session/"+session(t, env)+"/approve", bytes.NewBufferString(`{"user": "u1",`))
	req.Header.Set("X-API-Key", latchtest.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed JSON: %d, want 400", resp.StatusCode)
	}

	expiring := session(t, env)
	later := now.Add(11 * time.Minute)
	clock = func() time.Time { return later }
	for _, p := range []string{"", "/approve", "/deny"} {
		method, body := "POST", any(approve)
		switch p {
		case "":
			method, body = "GET", nil
		case "/deny":
			body = map[string]any{}
		}
		status, out := env.API(method, "/api/auth_session/"+expiring+p, body)
		if status != http.StatusGone || out["error"] != "expired" {
			t.Errorf("%s expired session%s: %d %v, want 410", method, p, status, out)
		}
	}
}
