package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/latchhq/latch/endpoint"
)

// scenario is what one worker repeats; setup runs once per worker before
// the clock starts (and again after an error that may have spent its
// state, such as a failed refresh).
type scenario struct {
	setup func(ctx context.Context, w *worker) error
	op    func(ctx context.Context, w *worker) (kind string, err error)
}

var scenarios = map[string]scenario{
	"flow":               {setup: nil, op: opFlow},
	"refresh":            {setup: setupUser, op: opRefresh},
	"client-credentials": {setup: nil, op: opClientCredentials},
	"introspect":         {setup: setupService, op: opIntrospect},
	"userinfo":           {setup: setupUser, op: opUserinfo},
	"mixed":              {setup: setupMixed, op: opMixed},
}

// mixWeights is the share of each operation in "mixed", per 100: mostly
// token checks and renewals, a few sign-ins, as a busy deployment sees.
var mixWeights = []struct {
	weight int
	op     func(ctx context.Context, w *worker) (string, error)
}{
	{5, opFlow},
	{20, opRefresh},
	{25, opClientCredentials},
	{35, opIntrospect},
	{15, opUserinfo},
}

// bencher holds what every worker shares.
type bencher struct {
	o          options
	tr         *http.Transport
	hc         *http.Client
	clientID   string
	basicAuth  string
	userSerial atomic.Int64
}

// worker holds one worker's tokens.
type worker struct {
	b        *bencher
	rng      *rand.Rand
	refresh  string // current refresh token (rotates)
	access   string // a user's access token (openid), for userinfo
	ccAccess string // a client_credentials token, for introspection

	// recording is set while the current op is measured; signIn then
	// keeps each HTTP step's latency, since a flow is four requests.
	recording bool
	steps     map[string][]time.Duration
}

// step times one HTTP exchange of a sign-in.
func (w *worker) step(name string, t0 time.Time) {
	if w.recording {
		w.steps["flow/"+name] = append(w.steps["flow/"+name], time.Since(t0))
	}
}

// benchError is a failed operation, grouped in the report by kind.
type benchError struct{ kind string }

func (e *benchError) Error() string { return e.kind }

func fail(step string, status int, body []byte) error {
	var oe struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &oe)
	k := fmt.Sprintf("%s: HTTP %d", step, status)
	if oe.Error != "" {
		k += " " + oe.Error
	}
	return &benchError{kind: k}
}

func transportErr(step string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "connection refused"):
		msg = "connection refused"
	case strings.Contains(msg, "Timeout") || strings.Contains(msg, "deadline"):
		msg = "timeout"
	case strings.Contains(msg, "reset by peer"):
		msg = "connection reset"
	}
	return &benchError{kind: step + ": " + msg}
}

// do sends req and returns the status and the whole body.
func do(c *http.Client, step string, req *http.Request) (*http.Response, []byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, transportErr(step, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, transportErr(step, err)
	}
	return resp, body, nil
}

// tokenCall posts a form with the client's basic credentials.
func (w *worker) tokenCall(ctx context.Context, step, path string, form url.Values) (map[string]any, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.b.o.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", w.b.basicAuth)
	resp, body, err := do(w.b.hc, step, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fail(step, resp.StatusCode, body)
	}
	out := map[string]any{}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, &benchError{kind: step + ": bad JSON"}
	}
	return out, nil
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

func randomString() string {
	b := make([]byte, 32)
	_, _ = crand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// signIn runs the whole browser flow with a fresh cookie jar: authorize →
// approval API (as the host app) → browser resume → code exchange.
func (w *worker) signIn(ctx context.Context, scope string) (map[string]any, error) {
	b := w.b
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: b.tr, Jar: jar, CheckRedirect: noRedirect, Timeout: 30 * time.Second}
	verifier := randomString()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {b.clientID}, "redirect_uri": {b.o.redirectURI},
		"scope": {scope}, "state": {randomString()[:16]}, "nonce": {randomString()[:16]},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.o.url+endpoint.Authorize+"?"+q.Encode(), nil)
	t0 := time.Now()
	resp, body, err := do(browser, "authorize", req)
	if err != nil {
		return nil, err
	}
	w.step("1 authorize", t0)
	if resp.StatusCode != http.StatusSeeOther {
		return nil, fail("authorize", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("token") == "" {
		return nil, &benchError{kind: "authorize: no session token in Location"}
	}

	approve, _ := json.Marshal(map[string]any{"user": fmt.Sprintf("bench-user-%d", b.userSerial.Add(1))})
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, b.o.url+endpoint.API+endpoint.AuthSession+"/"+url.PathEscape(loc.Query().Get("token"))+"/approve", bytes.NewReader(approve))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", b.o.apiKey)
	t0 = time.Now()
	resp, body, err = do(b.hc, "approve", req)
	if err != nil {
		return nil, err
	}
	w.step("2 approve", t0)
	if resp.StatusCode != http.StatusOK {
		return nil, fail("approve", resp.StatusCode, body)
	}
	var ap struct {
		RedirectURI string `json:"redirect_uri"`
	}
	if json.Unmarshal(body, &ap) != nil || ap.RedirectURI == "" {
		return nil, &benchError{kind: "approve: no redirect_uri"}
	}

	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, ap.RedirectURI, nil)
	t0 = time.Now()
	resp, body, err = do(browser, "resume", req)
	if err != nil {
		return nil, err
	}
	w.step("3 resume", t0)
	if resp.StatusCode != http.StatusSeeOther {
		return nil, fail("resume", resp.StatusCode, body)
	}
	cb, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || cb.Query().Get("code") == "" {
		return nil, &benchError{kind: "resume: no code in redirect"}
	}
	t0 = time.Now()
	tok, err := w.tokenCall(ctx, "code exchange", endpoint.Token, url.Values{
		"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
		"redirect_uri": {b.o.redirectURI}, "code_verifier": {verifier},
	})
	if err == nil {
		w.step("4 code exchange", t0)
	}
	return tok, err
}

func opFlow(ctx context.Context, w *worker) (string, error) {
	tok, err := w.signIn(ctx, benchScopes)
	if err == nil && (str(tok, "id_token") == "" || str(tok, "refresh_token") == "") {
		err = &benchError{kind: "code exchange: no id_token or refresh_token"}
	}
	return "flow", err
}

// refreshScope leaves openid out only for "refresh -id-token=false": the
// other scenarios need it (userinfo) or measure the common case.
func (w *worker) refreshScope() string {
	if w.b.o.scenario == "refresh" && !w.b.o.idToken {
		return "offline_access"
	}
	return "openid offline_access"
}

func setupUser(ctx context.Context, w *worker) error {
	tok, err := w.signIn(ctx, w.refreshScope())
	if err != nil {
		return err
	}
	w.refresh, w.access = str(tok, "refresh_token"), str(tok, "access_token")
	if w.refresh == "" {
		return &benchError{kind: "setup: no refresh token"}
	}
	return nil
}

func opRefresh(ctx context.Context, w *worker) (string, error) {
	tok, err := w.tokenCall(ctx, "refresh", endpoint.Token, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {w.refresh}})
	if err != nil {
		return "refresh", err
	}
	if w.refreshScope() != "offline_access" && str(tok, "id_token") == "" {
		return "refresh", &benchError{kind: "refresh: no id_token"}
	}
	w.refresh, w.access = str(tok, "refresh_token"), str(tok, "access_token")
	return "refresh", nil
}

func opClientCredentials(ctx context.Context, w *worker) (string, error) {
	tok, err := w.tokenCall(ctx, "client_credentials", endpoint.Token, url.Values{"grant_type": {"client_credentials"}})
	if err == nil && str(tok, "access_token") == "" {
		err = &benchError{kind: "client_credentials: no access_token"}
	}
	return "client_credentials", err
}

func setupService(ctx context.Context, w *worker) error {
	tok, err := w.tokenCall(ctx, "setup", endpoint.Token, url.Values{"grant_type": {"client_credentials"}})
	if err != nil {
		return err
	}
	w.ccAccess = str(tok, "access_token")
	return nil
}

func opIntrospect(ctx context.Context, w *worker) (string, error) {
	out, err := w.tokenCall(ctx, "introspect", endpoint.Introspect, url.Values{"token": {w.ccAccess}})
	if err == nil && out["active"] != true {
		err = &benchError{kind: "introspect: token not active"}
	}
	return "introspect", err
}

func opUserinfo(ctx context.Context, w *worker) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.b.o.url+endpoint.Userinfo, nil)
	req.Header.Set("Authorization", "Bearer "+w.access)
	resp, body, err := do(w.b.hc, "userinfo", req)
	if err != nil {
		return "userinfo", err
	}
	if resp.StatusCode != http.StatusOK {
		return "userinfo", fail("userinfo", resp.StatusCode, body)
	}
	return "userinfo", nil
}

func setupMixed(ctx context.Context, w *worker) error {
	if err := setupUser(ctx, w); err != nil {
		return err
	}
	return setupService(ctx, w)
}

func opMixed(ctx context.Context, w *worker) (string, error) {
	n := w.rng.IntN(100)
	for _, m := range mixWeights {
		if n < m.weight {
			return m.op(ctx, w)
		}
		n -= m.weight
	}
	return mixWeights[len(mixWeights)-1].op(ctx, w)
}
