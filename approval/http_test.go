package approval_test

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
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

// The state a case's session is in before its request.
const (
	unknown  = iota // no such session
	pending         // started, not decided
	approved        // started and approved
)

// TestAuthSessionStatusCodes: each case gets a session of its own in the
// state it names, so no case depends on what another did and the cases
// could run in any order.
func TestAuthSessionStatusCodes(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	approve := map[string]any{"user": "u1"}
	cases := []struct {
		name   string
		state  int
		key    string
		method string
		action string // "", "/approve" or "/deny"
		body   any
		status int
		error  string
	}{
		{"no key", pending, "", "GET", "", nil, 401, "unauthorized"},
		{"wrong key", pending, "latch_wrong", "POST", "/approve", approve, 401, "unauthorized"},
		{"read", pending, latchtest.APIKey, "GET", "", nil, 200, ""},
		{"unknown session read", unknown, latchtest.APIKey, "GET", "", nil, 404, "not_found"},
		{"unknown session approve", unknown, latchtest.APIKey, "POST", "/approve", approve, 404, "not_found"},
		{"unknown session deny", unknown, latchtest.APIKey, "POST", "/deny", nil, 404, "not_found"},
		{"user missing", pending, latchtest.APIKey, "POST", "/approve", map[string]any{}, 400, "invalid_request"},
		{"unknown field", pending, latchtest.APIKey, "POST", "/approve", map[string]any{"user": "u", "usr": "x"}, 400, "invalid_request"},
		{"scope not requested", pending, latchtest.APIKey, "POST", "/approve", map[string]any{"user": "u", "scopes": []string{"email"}}, 400, "invalid_request"},
		{"malformed JSON", pending, latchtest.APIKey, "POST", "/approve", json.RawMessage(`{"user": "u1",`), 400, "invalid_request"},
		{"approve", pending, latchtest.APIKey, "POST", "/approve", approve, 200, ""},
		{"deny", pending, latchtest.APIKey, "POST", "/deny", nil, 200, ""},
		{"approve twice", approved, latchtest.APIKey, "POST", "/approve", approve, 409, "conflict"},
		{"deny after approve", approved, latchtest.APIKey, "POST", "/deny", nil, 409, "conflict"},
	}
	// Sessions are made here, on the test's own goroutine (env's helpers
	// fail the test they were started with), one per case.
	ids := make([]string, len(cases))
	for i, tc := range cases {
		switch tc.state {
		case unknown:
			ids[i] = "nope"
		case pending:
			ids[i] = session(t, env)
		case approved:
			ids[i] = session(t, env)
			env.Approve(ids[i], approve)
		}
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := latchtest.CallAPI(t, env.URL, tc.key, tc.method, "/api/auth_session/"+ids[i]+tc.action, tc.body)
			if status != tc.status || (tc.error != "" && (out["error"] != tc.error || out["error_description"] == nil)) {
				t.Errorf("%d %v, want %d %s", status, out, tc.status, tc.error)
			}
		})
	}
}

// TestAuthSessionExpired: a session past its lifetime is gone (410) to
// every call, on an instance of its own, since moving its clock would
// expire any other test's sessions too.
func TestAuthSessionExpired(t *testing.T) {
	var now atomic.Pointer[time.Time]
	start := time.Now()
	now.Store(&start)
	env := latchtest.Start(t, latchtest.Options{Now: func() time.Time { return *now.Load() }})
	ids := map[string]string{"": session(t, env), "/approve": session(t, env), "/deny": session(t, env)}
	later := start.Add(11 * time.Minute)
	now.Store(&later)
	for action, id := range ids {
		method, body := "POST", any(map[string]any{"user": "u1"})
		switch action {
		case "":
			method, body = "GET", nil
		case "/deny":
			body = map[string]any{}
		}
		status, out := env.API(method, "/api/auth_session/"+id+action, body)
		if status != http.StatusGone || out["error"] != "expired" {
			t.Errorf("%s expired session%s: %d %v, want 410", method, action, status, out)
		}
	}
}
