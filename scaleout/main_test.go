package scaleout_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// backends runs fn once on SQLite and once on a fresh PostgreSQL database.
func backends(t *testing.T, fn func(t *testing.T, dsn func(t *testing.T) string)) {
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		fn(t, func(*testing.T) string { return "" })
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, func(t *testing.T) string { return pgtest.DSN(t) })
	})
}

// httpClient keeps enough idle connections for the races not to spend
// their time in TCP handshakes.
var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConns: 200, MaxIdleConnsPerHost: 200, MaxConnsPerHost: 200}}

type result struct {
	status int
	body   map[string]any
}

func (r result) String() string { return fmt.Sprintf("%d %v", r.status, r.body) }

func post(t *testing.T, u string, form url.Values, c latchtest.Client) result {
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.ID != "" {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) result {
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", req.Method, req.URL, err)
		return result{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	_ = json.Unmarshal(raw, &out)
	return result{resp.StatusCode, out}
}

// parallel runs fn n times at once and returns the results.
func parallel(n int, fn func(i int) result) []result {
	out := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// tally counts statuses and OAuth error codes, and fails on any 5xx.
func tally(t *testing.T, rs []result) (byStatus map[int]int, byError map[string]int) {
	t.Helper()
	byStatus, byError = map[int]int{}, map[string]int{}
	for _, r := range rs {
		byStatus[r.status]++
		if e, ok := r.body["error"].(string); ok {
			byError[e]++
		}
		if r.status >= 500 || r.status == 0 {
			t.Errorf("a racer got %s", r)
		}
	}
	return byStatus, byError
}

// flow is one authorization through approval up to the code.
type flow struct {
	verifier string
	code     string
}

// openidScope is what most flows here ask for.
const openidScope = "openid offline_access"

func authURL(base string, c latchtest.Client, verifier string) string {
	return authURLScope(base, c, verifier, openidScope)
}

func authURLScope(base string, c latchtest.Client, verifier, scope string) string {
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.ID},
		"redirect_uri":          {c.RedirectURIs[0]},
		"scope":                 {scope},
		"state":                 {"state-123456"},
		"nonce":                 {"nonce-123456"},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	return base + "/oauth2/authorize?" + q.Encode()
}

// getCode runs the browser flow on env, approved by the host app.
func getCode(t *testing.T, env *latchtest.Env, c latchtest.Client, scope string) flow {
	t.Helper()
	verifier := strings.Repeat("v", 20) + randomish(t)
	loc := env.Authorize(latchtest.NewBrowser(t), authURLScope(env.URL, c, verifier, scope), map[string]any{"user": "user-1"})
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", loc)
	}
	return flow{verifier: verifier, code: code}
}

var seq struct {
	sync.Mutex
	n int
}

func randomish(*testing.T) string {
	seq.Lock()
	defer seq.Unlock()
	seq.n++
	return fmt.Sprintf("%032d", seq.n)
}

func exchange(t *testing.T, base string, c latchtest.Client, f flow) result {
	return post(t, base+"/oauth2/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {f.code},
		"redirect_uri": {c.RedirectURIs[0]}, "code_verifier": {f.verifier},
	}, c)
}

func refresh(t *testing.T, base string, c latchtest.Client, rt string) result {
	return post(t, base+"/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, c)
}

// active asks introspection (as the admin API) whether token is active.
func active(t *testing.T, env *latchtest.Env, token string) bool {
	t.Helper()
	req, _ := http.NewRequest("POST", env.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-API-Key", latchtest.APIKey)
	r := do(t, req)
	if r.status != 200 {
		t.Fatalf("introspect: %s", r)
	}
	return r.body["active"] == true
}

func str(t *testing.T, r result, field string) string {
	t.Helper()
	s, _ := r.body[field].(string)
	if s == "" {
		t.Fatalf("no %s in %s", field, r)
	}
	return s
}
