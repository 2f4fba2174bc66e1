package scaleout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage/pgtest"
)

// TestPostgresStopsMidFlow stops PostgreSQL while browsers run whole
// flows (authorize, approve, resume, code exchange, refresh, userinfo)
// against one Latch, then starts it again without touching Latch. It
// shows that:
//   - the only server errors are 503s: no 500, no dropped connection, and
//     no 4xx either (every flow starts afresh, so a 4xx would mean the
//     outage corrupted something a later request tripped over);
//   - nothing is half-written: every live code has its PKCE and OIDC
//     rows, every token its grant (the code it came from), every live
//     refresh token its access token;
//   - Latch recovers by itself: every browser completes a whole flow once
//     PostgreSQL is back, and a refresh token issued before the outage
//     still works.
func TestPostgresStopsMidFlow(t *testing.T) {
	pg := pgtest.Own(t)
	dsn := pg.DSN(t)
	env := latchtest.Start(t, latchtest.Options{DSN: dsn})
	c := env.WebClient("client_secret_basic")
	before := exchange(t, env.URL, c, getCode(t, env, c, openidScope))
	if before.status != 200 {
		t.Fatalf("exchange before the outage: %s", before)
	}

	const workers = 4
	run := &faultRun{env: env, c: c}
	var stop atomic.Bool
	recovered := make([]chan struct{}, workers)
	var wg sync.WaitGroup
	for w := range workers {
		recovered[w] = make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			once := sync.Once{}
			for !stop.Load() {
				phase := run.phase.Load()
				if run.flow(w) && phase == phaseAfter {
					once.Do(func() { close(recovered[w]) })
				}
			}
		}()
	}
	time.Sleep(time.Second)
	run.phase.Store(phaseDuring)
	pg.Stop(t)
	time.Sleep(1500 * time.Millisecond)
	pg.Start(t)
	run.phase.Store(phaseAfter)
	deadline := time.After(60 * time.Second)
	for w := range workers {
		select {
		case <-recovered[w]:
		case <-deadline:
			t.Errorf("browser %d completed no flow within 60s of PostgreSQL coming back", w)
		}
	}
	stop.Store(true)
	wg.Wait()

	run.mu.Lock()
	t.Logf("answers by phase: %v; flows completed by phase: %v", run.statuses, run.completed)
	for i, b := range run.bad {
		if i == 20 {
			t.Errorf("... and %d more", len(run.bad)-i)
			break
		}
		t.Error(b)
	}
	if run.statuses[phaseNames[phaseDuring]][http.StatusServiceUnavailable] == 0 {
		t.Error("no 503 during the outage: the test did not hit it")
	}
	run.mu.Unlock()

	if r := refresh(t, env.URL, c, str(t, before, "refresh_token")); r.status != 200 {
		t.Errorf("refresh of a token issued before the outage: %s", r)
	}
	checkNoHalfWrittenGrants(t, dsn)
}

const (
	phaseBefore = iota
	phaseDuring
	phaseAfter
)

var phaseNames = [...]string{"before", "during", "after"}

type faultRun struct {
	env   *latchtest.Env
	c     latchtest.Client
	phase atomic.Int32

	mu        sync.Mutex
	statuses  map[string]map[int]int
	completed map[string]int
	bad       []string
}

// answer records one response; it reports whether the flow may go on.
// A 503 ends the flow quietly; anything else unexpected is a failure.
func (f *faultRun) answer(phase int32, step string, status, want int, body []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.statuses == nil {
		f.statuses, f.completed = map[string]map[int]int{}, map[string]int{}
	}
	name := phaseNames[phase]
	if f.statuses[name] == nil {
		f.statuses[name] = map[int]int{}
	}
	f.statuses[name][status]++
	switch {
	case status == want:
		return true
	case status == http.StatusServiceUnavailable && bytes.Contains(body, []byte("temporarily_unavailable")):
	case status == http.StatusServiceUnavailable && bytes.Contains(body, []byte("temporarily unavailable")):
		// A browser step (resume) answers people with a page, not JSON.
	default:
		f.bad = append(f.bad, fmt.Sprintf("%s the outage, %s: %d %s (want %d, or 503 temporarily_unavailable)", name, step, status, body, want))
	}
	return false
}

// flow runs one whole authorization in a fresh browser; true when it
// completed.
func (f *faultRun) flow(w int) bool {
	phase := f.phase.Load()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(step string, req *http.Request, want int, client *http.Client) (*http.Response, []byte, bool) {
		resp, err := client.Do(req)
		if err != nil {
			f.mu.Lock()
			f.bad = append(f.bad, fmt.Sprintf("%s the outage, %s: %v", phaseNames[phase], step, err))
			f.mu.Unlock()
			return nil, nil, false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body, f.answer(phase, step, resp.StatusCode, want, body)
	}
	verifier := fmt.Sprintf("fault-verifier-%d-%s", w, randomishNoT())
	req, _ := http.NewRequest("GET", authURL(f.env.URL, f.c, verifier), nil)
	resp, _, ok := send("authorize", req, http.StatusSeeOther, browser)
	if !ok {
		return false
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	raw, _ := json.Marshal(map[string]any{"user": fmt.Sprintf("user-%d", w)})
	req, _ = http.NewRequest("POST", f.env.URL+"/api/auth_session/"+loc.Query().Get("token")+"/approve", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", latchtest.APIKey)
	_, body, ok := send("approve", req, http.StatusOK, httpClient)
	if !ok {
		return false
	}
	var approved struct {
		RedirectURI string `json:"redirect_uri"`
	}
	_ = json.Unmarshal(body, &approved)
	req, _ = http.NewRequest("GET", approved.RedirectURI, nil)
	if resp, _, ok = send("resume", req, http.StatusSeeOther, browser); !ok {
		return false
	}
	back, _ := url.Parse(resp.Header.Get("Location"))
	token := func(step string, form url.Values) map[string]any {
		req, _ := http.NewRequest("POST", f.env.URL+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(f.c.ID), url.QueryEscape(f.c.Secret))
		_, body, ok := send(step, req, http.StatusOK, httpClient)
		if !ok {
			return nil
		}
		out := map[string]any{}
		_ = json.Unmarshal(body, &out)
		return out
	}
	tok := token("code exchange", url.Values{"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")},
		"redirect_uri": {f.c.RedirectURIs[0]}, "code_verifier": {verifier}})
	if tok == nil {
		return false
	}
	ref := token("refresh", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {fmt.Sprint(tok["refresh_token"])}})
	if ref == nil {
		return false
	}
	req, _ = http.NewRequest("GET", f.env.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+fmt.Sprint(ref["access_token"]))
	if _, _, ok = send("userinfo", req, http.StatusOK, httpClient); !ok {
		return false
	}
	f.mu.Lock()
	f.completed[phaseNames[phase]]++
	f.mu.Unlock()
	return true
}

func randomishNoT() string { return randomish(nil) }

// checkNoHalfWrittenGrants looks at the rows themselves: a request cut
// off by the outage must have written all of its rows or none.
func checkNoHalfWrittenGrants(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for what, q := range map[string]string{
		"live codes without their PKCE row": `SELECT count(*) FROM oauth2_tokens c WHERE c.kind = 'code' AND c.active
			AND NOT EXISTS (SELECT 1 FROM oauth2_tokens p WHERE p.kind = 'pkce' AND p.request_id = c.request_id)`,
		"live codes without their OIDC row": `SELECT count(*) FROM oauth2_tokens c WHERE c.kind = 'code' AND c.active
			AND NOT EXISTS (SELECT 1 FROM oauth2_tokens o WHERE o.kind = 'oidc' AND o.request_id = c.request_id)`,
		"tokens without the code they were granted by": `SELECT count(*) FROM oauth2_tokens x WHERE x.kind IN ('access', 'refresh')
			AND NOT EXISTS (SELECT 1 FROM oauth2_tokens c WHERE c.kind = 'code' AND c.request_id = x.request_id)`,
		"live refresh tokens without their access token": `SELECT count(*) FROM oauth2_tokens r WHERE r.kind = 'refresh' AND r.active
			AND NOT EXISTS (SELECT 1 FROM oauth2_tokens a WHERE a.kind = 'access' AND a.signature = r.access_signature)`,
	} {
		var n int
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n != 0 {
			t.Errorf("%d %s", n, what)
		}
	}
	var codes, tokens int
	_ = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE kind = 'code'), count(*) FILTER (WHERE kind IN ('access', 'refresh')) FROM oauth2_tokens`).Scan(&codes, &tokens)
	t.Logf("after the run: %d codes, %d tokens", codes, tokens)
}
