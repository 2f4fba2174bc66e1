package server_test

import (
	"context"
	"encoding/json"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage/conformance"
)

// outcome is what a refused request produced, read the same way whether
// the error came as a redirect (Location query) or as a JSON body.
type outcome struct {
	status   int
	code     string
	location *url.URL
	header   http.Header
}

func readOutcome(t *testing.T, resp *http.Response, body []byte) outcome {
	t.Helper()
	o := outcome{status: resp.StatusCode, header: resp.Header}
	if loc := resp.Header.Get("Location"); loc != "" {
		o.location, _ = url.Parse(loc)
		o.code = o.location.Query().Get("error")
		return o
	}
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	o.code = e.Error
	return o
}

// negFixture holds what the rows share: one instance and its clients.
// Rows only add state of their own (sessions, codes), never change what
// another row sees, so they pass in any order.
type negFixture struct {
	env    *latchtest.Env
	web    latchtest.Client
	other  latchtest.Client
	native latchtest.Client
}

func (f *negFixture) authURL(c latchtest.Client, edit func(url.Values)) string {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.ID},
		"redirect_uri":          {c.RedirectURIs[0]},
		"scope":                 {"openid offline_access"},
		"state":                 {"state-0123456789"},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(testVerifier)},
		"code_challenge_method": {"S256"},
	}
	if edit != nil {
		edit(q)
	}
	return f.env.URL + "/oauth2/authorize?" + q.Encode()
}

const testVerifier = "a-verifier-that-is-long-enough-for-pkce-0123456789abcdef"

// code runs an approved flow for c in browser b and returns the code.
func (f *negFixture) code(t *testing.T, b *latchtest.Browser, c latchtest.Client) string {
	t.Helper()
	loc := f.env.Authorize(b, f.authURL(c, nil), map[string]any{"user": "neg-user"})
	if loc.Query().Get("code") == "" {
		t.Fatalf("no code in %s", loc)
	}
	return loc.Query().Get("code")
}

func (f *negFixture) exchange(t *testing.T, c latchtest.Client, code, verifier string) (*http.Response, map[string]any) {
	t.Helper()
	return postForm(t, f.env.URL+"/oauth2/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
		"redirect_uri": {c.RedirectURIs[0]},
	}, c.ID, c.Secret)
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestRefusals(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	f := &negFixture{env: env, web: env.WebClient("client_secret_basic"),
		other: env.WebClient("client_secret_basic"), native: env.NativeClient()}

	get := func(u string) func(t *testing.T) outcome {
		return func(t *testing.T) outcome {
			resp, body := latchtest.NewBrowser(t).Get(u)
			return readOutcome(t, resp, body)
		}
	}
	rows := []struct {
		name       string
		run        func(t *testing.T) outcome
		wantStatus int
		wantCode   string
		// redirectTo: "" means no Location at all; "client" means an error
		// redirect to the client's redirect URI carrying state and iss.
		redirectTo string
		check      func(t *testing.T, o outcome)
	}{
		{name: "missing PKCE", wantStatus: 303, wantCode: "invalid_request", redirectTo: "client",
			run: get(f.authURL(f.web, func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }))},
		{name: "PKCE plain", wantStatus: 303, wantCode: "invalid_request", redirectTo: "client",
			run: get(f.authURL(f.web, func(q url.Values) { q.Set("code_challenge", testVerifier); q.Set("code_challenge_method", "plain") }))},
		{name: "PKCE method missing (defaults to plain)", wantStatus: 303, wantCode: "invalid_request", redirectTo: "client",
			run: get(f.authURL(f.web, func(q url.Values) { q.Del("code_challenge_method") }))},
		{name: "response_type=token (implicit)", wantStatus: 303, wantCode: "unsupported_response_type", redirectTo: "client",
			run: get(f.authURL(f.web, func(q url.Values) { q.Set("response_type", "token") }))},
		{name: "response_type=code id_token (hybrid)", wantStatus: 303, wantCode: "unsupported_response_type", redirectTo: "client",
			run: get(f.authURL(f.web, func(q url.Values) { q.Set("response_type", "code id_token"); q.Set("nonce", "nonce-0123456789") }))},
		{name: "unknown scope", wantStatus: 303, wantCode: "invalid_scope", redirectTo: "client",
			run: get(f.authURL(f.web, func(q url.Values) { q.Set("scope", "openid admin:everything") }))},
		{name: "unregistered redirect URI", wantStatus: 400, wantCode: "invalid_request",
			run: get(f.authURL(f.web, func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }))},
		{name: "altered redirect URI (path)", wantStatus: 400, wantCode: "invalid_request",
			run: get(f.authURL(f.web, func(q url.Values) { q.Set("redirect_uri", "https://client.example/cb/../evil") }))},
		{name: "altered redirect URI (query)", wantStatus: 400, wantCode: "invalid_request",
			run: get(f.authURL(f.web, func(q url.Values) { q.Set("redirect_uri", "https://client.example/cb?next=evil") }))},
		{name: "unknown client", wantStatus: 400, wantCode: "invalid_client",
			run: get(f.authURL(latchtest.Client{ID: "nope", RedirectURIs: []string{"https://client.example/cb"}}, nil))},
		{name: "loopback redirect on any port is allowed", wantStatus: 303, wantCode: "",
			run: get(f.authURL(f.native, func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:61234/callback") })),
			check: func(t *testing.T, o outcome) {
				if !strings.HasPrefix(o.location.String(), latchtest.ApprovalURL+"?token=") {
					t.Errorf("loopback port variant not sent to approval: %s", o.location)
				}
			}},
		{name: "loopback redirect with another path", wantStatus: 400, wantCode: "invalid_request",
			run: get(f.authURL(f.native, func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:61234/other") }))},
		{name: "grant_type=password", wantStatus: 400, wantCode: "unsupported_grant_type",
			run: func(t *testing.T) outcome {
				resp, body := postForm(t, env.URL+"/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"u"}, "password": {"p"}}, f.web.ID, f.web.Secret)
				b, _ := json.Marshal(body)
				return readOutcome(t, resp, b)
			}},
		{name: "bad client secret", wantStatus: 401, wantCode: "invalid_client",
			run: func(t *testing.T) outcome {
				resp, body := postForm(t, env.URL+"/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, f.web.ID, "wrong-secret")
				b, _ := json.Marshal(body)
				return readOutcome(t, resp, b)
			},
			check: func(t *testing.T, o outcome) {
				if !strings.HasPrefix(o.header.Get("WWW-Authenticate"), "Basic") {
					t.Errorf("WWW-Authenticate = %q", o.header.Get("WWW-Authenticate"))
				}
				if o.header.Get("Cache-Control") != "no-store" {
					t.Errorf("token error Cache-Control = %q", o.header.Get("Cache-Control"))
				}
			}},
		{name: "wrong PKCE verifier", wantStatus: 400, wantCode: "invalid_grant",
			run: func(t *testing.T) outcome {
				code := f.code(t, latchtest.NewBrowser(t), f.web)
				resp, body := f.exchange(t, f.web, code, "a-different-verifier-that-is-long-enough-0123456789abcdef")
				b, _ := json.Marshal(body)
				return readOutcome(t, resp, b)
			}},
		{name: "code used by another client", wantStatus: 400, wantCode: "invalid_grant",
			run: func(t *testing.T) outcome {
				code := f.code(t, latchtest.NewBrowser(t), f.web)
				resp, body := postForm(t, env.URL+"/oauth2/token", url.Values{
					"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {testVerifier},
					"redirect_uri": {f.web.RedirectURIs[0]},
				}, f.other.ID, f.other.Secret)
				b, _ := json.Marshal(body)
				return readOutcome(t, resp, b)
			}},
		{name: "code replay revokes the first exchange's tokens", wantStatus: 400, wantCode: "invalid_grant",
			run: func(t *testing.T) outcome {
				code := f.code(t, latchtest.NewBrowser(t), f.web)
				resp, first := f.exchange(t, f.web, code, testVerifier)
				if resp.StatusCode != 200 {
					t.Fatalf("first exchange: %d %v", resp.StatusCode, first)
				}
				if got := introspect(t, env, first["access_token"].(string), "", ""); got["active"] != true {
					t.Fatalf("first access token inactive before replay")
				}
				resp, body := f.exchange(t, f.web, code, testVerifier)
				for _, k := range []string{"access_token", "refresh_token"} {
					if got := introspect(t, env, first[k].(string), "", ""); got["active"] != false {
						t.Errorf("%s of a replayed code still active", k)
					}
				}
				b, _ := json.Marshal(body)
				return readOutcome(t, resp, b)
			}},
		{name: "approve twice", wantStatus: 409, wantCode: "conflict",
			run: func(t *testing.T) outcome {
				id := env.StartAuthorize(latchtest.NewBrowser(t), f.authURL(f.web, nil))
				env.Approve(id, map[string]any{"user": "u"})
				return apiOutcome(t, env, latchtest.APIKey, "POST", "/api/auth_session/"+id+"/approve", `{"user":"u"}`)
			}},
		{name: "deny after approve", wantStatus: 409, wantCode: "conflict",
			run: func(t *testing.T) outcome {
				id := env.StartAuthorize(latchtest.NewBrowser(t), f.authURL(f.web, nil))
				env.Approve(id, map[string]any{"user": "u"})
				return apiOutcome(t, env, latchtest.APIKey, "POST", "/api/auth_session/"+id+"/deny", `{}`)
			}},
		{name: "unknown session", wantStatus: 404, wantCode: "not_found",
			run: func(t *testing.T) outcome {
				return apiOutcome(t, env, latchtest.APIKey, "GET", "/api/auth_session/does-not-exist", "")
			}},
		{name: "wrong API key", wantStatus: 401, wantCode: "unauthorized",
			run: func(t *testing.T) outcome {
				return apiOutcome(t, env, "latch_wrong", "GET", "/api/auth_session/x", "")
			}},
		{name: "missing API key", wantStatus: 401, wantCode: "unauthorized",
			run: func(t *testing.T) outcome { return apiOutcome(t, env, "", "GET", "/api/auth_session/x", "") }},
		{name: "malformed approve body", wantStatus: 400, wantCode: "invalid_request",
			run: func(t *testing.T) outcome {
				id := env.StartAuthorize(latchtest.NewBrowser(t), f.authURL(f.web, nil))
				return apiOutcome(t, env, latchtest.APIKey, "POST", "/api/auth_session/"+id+"/approve", `{"user":`)
			}},
		{name: "approve with unknown field", wantStatus: 400, wantCode: "invalid_request",
			run: func(t *testing.T) outcome {
				id := env.StartAuthorize(latchtest.NewBrowser(t), f.authURL(f.web, nil))
				return apiOutcome(t, env, latchtest.APIKey, "POST", "/api/auth_session/"+id+"/approve", `{"user":"u","scope":["openid"]}`)
			}},
		{name: "approve without user", wantStatus: 400, wantCode: "invalid_request",
			run: func(t *testing.T) outcome {
				id := env.StartAuthorize(latchtest.NewBrowser(t), f.authURL(f.web, nil))
				return apiOutcome(t, env, latchtest.APIKey, "POST", "/api/auth_session/"+id+"/approve", `{}`)
			}},
		{name: "approve a scope that was not requested", wantStatus: 400, wantCode: "invalid_request",
			run: func(t *testing.T) outcome {
				id := env.StartAuthorize(latchtest.NewBrowser(t), f.authURL(f.web, nil))
				return apiOutcome(t, env, latchtest.APIKey, "POST", "/api/auth_session/"+id+"/approve", `{"user":"u","scopes":["email"]}`)
			}},
		// Binding cookies are per session: the thief's own flow gives it none
		// for this one, so it is told to use the browser that started it.
		{name: "session resumed from another cookie jar", wantStatus: 400,
			run: func(t *testing.T) outcome {
				id := env.StartAuthorize(latchtest.NewBrowser(t), f.authURL(f.web, nil))
				redirect := env.Approve(id, map[string]any{"user": "u"})
				thief := latchtest.NewBrowser(t)
				thief.Get(f.authURL(f.web, nil)) // the thief has a binding cookie of its own
				resp, body := thief.Get(redirect)
				return readOutcome(t, resp, body)
			}},
		{name: "session resumed with no cookie at all", wantStatus: 400,
			run: func(t *testing.T) outcome {
				id := env.StartAuthorize(latchtest.NewBrowser(t), f.authURL(f.web, nil))
				resp, body := latchtest.NewBrowser(t).Get(env.Approve(id, map[string]any{"user": "u"}))
				return readOutcome(t, resp, body)
			}},
		{name: "session resumed before the decision", wantStatus: 409,
			run: func(t *testing.T) outcome {
				b := latchtest.NewBrowser(t)
				id := env.StartAuthorize(b, f.authURL(f.web, nil))
				resp, body := b.Get(env.URL + "/oauth2/authorize/resume?session=" + url.QueryEscape(id) + "&verifier=guess")
				return readOutcome(t, resp, body)
			}},
		{name: "session resumed twice", wantStatus: 409,
			run: func(t *testing.T) outcome {
				b := latchtest.NewBrowser(t)
				id := env.StartAuthorize(b, f.authURL(f.web, nil))
				redirect := env.Approve(id, map[string]any{"user": "u"})
				env.Resume(b, redirect)
				resp, body := b.Get(redirect)
				return readOutcome(t, resp, body)
			}},
		{name: "access token in the query string at userinfo", wantStatus: 401, wantCode: "invalid_token",
			run: func(t *testing.T) outcome {
				code := f.code(t, latchtest.NewBrowser(t), f.web)
				_, tok := f.exchange(t, f.web, code, testVerifier)
				resp, body := latchtest.NewBrowser(t).Get(env.URL + "/userinfo?access_token=" + url.QueryEscape(tok["access_token"].(string)))
				return readOutcome(t, resp, body)
			}},
		// Moving a clock would expire every other row's sessions and codes
		// (and fosite keeps its own clock), so this row has its own instance.
		{name: "expired session", wantStatus: 410, wantCode: "expired",
			run: func(t *testing.T) outcome {
				clock := conformance.NewClockAt(time.Now())
				own := latchtest.Start(t, latchtest.Options{Now: clock.Now})
				g := &negFixture{env: own, web: own.WebClient("client_secret_basic")}
				id := own.StartAuthorize(latchtest.NewBrowser(t), g.authURL(g.web, nil))
				clock.Advance(own.Config.Approval.SessionLifetime + time.Second)
				return apiOutcome(t, own, latchtest.APIKey, "POST", "/api/auth_session/"+id+"/approve", `{"user":"u"}`)
			}},
	}
	// A shuffled order keeps the rows honest about sharing nothing.
	seed := time.Now().UnixNano()
	t.Logf("row order seed %d", seed)
	rand.New(rand.NewSource(seed)).Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			o := row.run(t)
			if o.status != row.wantStatus || o.code != row.wantCode {
				t.Fatalf("got %d %q, want %d %q (location %v)", o.status, o.code, row.wantStatus, row.wantCode, o.location)
			}
			switch row.redirectTo {
			case "":
				if o.location != nil && row.check == nil {
					t.Errorf("must not redirect, got Location %s", o.location)
				}
			case "client":
				q := o.location.Query()
				if !strings.HasPrefix(o.location.String(), "https://client.example/cb?") || q.Get("iss") != env.URL ||
					q.Get("state") != "state-0123456789" || q.Get("code") != "" {
					t.Errorf("error redirect %s: want the client's redirect URI with state and iss", o.location)
				}
			}
			if row.check != nil {
				row.check(t, o)
			}
		})
	}
}

func apiOutcome(t *testing.T, env *latchtest.Env, key, method, path, body string) outcome {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, env.URL+path, rd)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, b := do(t, req)
	var e map[string]string
	if err := json.Unmarshal(b, &e); err != nil || e["error_description"] == "" {
		t.Errorf("API error body %q: want JSON with error and error_description", b)
	}
	return readOutcome(t, resp, b)
}
