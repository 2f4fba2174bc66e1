package server_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage/conformance"
	"github.com/latchhq/latch/storage/pgtest"
)

// from is a caller at a loopback address of its own (all of 127.0.0.0/8
// reaches the server on Linux), since Latch limits by the TCP peer.
type from struct {
	t  *testing.T
	hc *http.Client
}

func newFrom(t *testing.T, ip string) *from {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &from{t: t, hc: &http.Client{
		Transport:     &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type answer struct {
	status int
	header http.Header
	body   string
	json   map[string]any
}

func (f *from) do(method, u string, form url.Values, headers map[string]string) answer {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(raw)}
	_ = json.Unmarshal(raw, &a.json)
	return a
}

func (f *from) token(env *latchtest.Env, id, secret string) answer {
	f.t.Helper()
	return f.do("POST", env.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, basicAuth(id, secret))
}

// wantLimited checks a 429 in the SPEC §7 form.
func wantLimited(t *testing.T, what string, a answer) {
	t.Helper()
	secs, err := strconv.Atoi(a.header.Get("Retry-After"))
	if a.status != http.StatusTooManyRequests || err != nil || secs < 1 {
		t.Fatalf("%s: %d Retry-After %q %s, want 429 with Retry-After", what, a.status, a.header.Get("Retry-After"), a.body)
	}
	if a.json["error"] != "rate_limited" || a.json["error_description"] == "" {
		t.Fatalf("%s: body %s, want {\"error\":\"rate_limited\",...}", what, a.body)
	}
}

func limits(edit func(l *config.LimitsConfig)) func(*config.Config) {
	return func(c *config.Config) { edit(&c.Limits) }
}

// After N failed client secrets from one address its next attempt is
// refused with 429, even with the right secret (otherwise guessing goes on
// behind the refusals); the client's other addresses keep working until the
// per-client limit is reached; other clients are unaffected. Every
// client-authenticating endpoint shares the lock.
func TestFailedClientSecretsAreLimited(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: limits(func(l *config.LimitsConfig) {
		l.FailedCredentialsPerIP, l.FailedCredentialsPerClient = 5, 8
	})})
	worker := env.CreateClient(clients.Metadata{ClientName: "worker", GrantTypes: []string{"client_credentials"}})
	other := env.CreateClient(clients.Metadata{ClientName: "other", GrantTypes: []string{"client_credentials"}})
	attacker, office, elsewhere := newFrom(t, "127.0.0.1"), newFrom(t, "127.0.0.2"), newFrom(t, "127.0.0.3")

	for i := range 5 {
		if a := attacker.token(env, worker.ID, "wrong-secret"); a.status != http.StatusUnauthorized {
			t.Fatalf("wrong secret %d: %d %s", i+1, a.status, a.body)
		}
	}
	wantLimited(t, "right secret from the locked address", attacker.token(env, worker.ID, worker.Secret))
	wantLimited(t, "introspection from the locked address", attacker.do("POST", env.URL+"/oauth2/introspect",
		url.Values{"token": {"x"}}, basicAuth(other.ID, other.Secret)))
	wantLimited(t, "revocation from the locked address", attacker.do("POST", env.URL+"/oauth2/revoke",
		url.Values{"token": {"x"}}, basicAuth(other.ID, other.Secret)))
	if a := office.token(env, worker.ID, worker.Secret); a.status != http.StatusOK {
		t.Fatalf("the client from another address: %d %s", a.status, a.body)
	}

	// Three more failures from a third address reach the per-client limit
	// (8): the client is refused everywhere, other clients are not.
	for range 3 {
		elsewhere.do("POST", env.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"},
			"client_id": {worker.ID}, "client_secret": {"wrong"}}, nil)
	}
	wantLimited(t, "right secret once the client is locked", office.token(env, worker.ID, worker.Secret))
	if a := office.token(env, other.ID, other.Secret); a.status != http.StatusOK {
		t.Fatalf("another client: %d %s", a.status, a.body)
	}
}

// Failed-credential counts live in the database: failures spread over two
// instances add up, and a lock-out reached on one applies on the other
// within limits.failure_sync.
func TestFailedCredentialLimitsAreShared(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		testSharedLimits(t, "sqlite://"+filepath.Join(t.TempDir(), "latch.db"))
	})
	t.Run("Postgres", func(t *testing.T) { testSharedLimits(t, pgtest.DSN(t)) })
}

func testSharedLimits(t *testing.T, dsn string) {
	// A clock well inside a 5-minute window, so advancing it cannot start
	// a new one.
	clk := conformance.NewClockAt(time.Now())
	now := clk.Now()
	clk.Advance(now.Truncate(5 * time.Minute).Add(5*time.Minute + 10*time.Second).Sub(now))
	opt := latchtest.Options{DSN: dsn, Now: clk.Now, Configure: limits(func(l *config.LimitsConfig) {
		l.FailedCredentialsPerIP, l.FailedCredentialsPerClient = 4, 1000
	})}
	a := latchtest.Start(t, opt)
	b := latchtest.Start(t, opt)
	worker := a.CreateClient(clients.Metadata{ClientName: "worker", GrantTypes: []string{"client_credentials"}})
	me := newFrom(t, "127.0.0.1")

	me.token(a, worker.ID, "wrong")
	me.token(a, worker.ID, "wrong")
	me.token(b, worker.ID, "wrong")
	if r := me.token(a, worker.ID, worker.Secret); r.status != http.StatusOK {
		t.Fatalf("after 3 of 4 failures: %d %s", r.status, r.body)
	}
	me.token(b, worker.ID, "wrong") // the 4th, counted through b
	wantLimited(t, "b, right secret after 4 failures on a and b", me.token(b, worker.ID, worker.Secret))
	clk.Advance(2 * time.Second) // past a's failure_sync (1s)
	wantLimited(t, "a, right secret after the lock-out on b", me.token(a, worker.ID, worker.Secret))
	if r := newFrom(t, "127.0.0.2").token(a, worker.ID, worker.Secret); r.status != http.StatusOK {
		t.Fatalf("another address: %d %s", r.status, r.body)
	}
}

// Wrong admin API keys count like client secrets: after the limit the
// right key from that address is refused, at /api and at introspection.
func TestFailedAPIKeysAreLimited(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: limits(func(l *config.LimitsConfig) { l.FailedCredentialsPerIP = 3 })})
	guesser := newFrom(t, "127.0.0.1")
	for i := range 3 {
		if a := guesser.do("GET", env.URL+"/api/clients", nil, map[string]string{"X-API-Key": "guess-" + strconv.Itoa(i)}); a.status != http.StatusUnauthorized {
			t.Fatalf("wrong key %d: %d", i+1, a.status)
		}
	}
	wantLimited(t, "right key at /api", guesser.do("GET", env.URL+"/api/clients", nil, map[string]string{"X-API-Key": latchtest.APIKey}))
	wantLimited(t, "right key at introspection", guesser.do("POST", env.URL+"/oauth2/introspect",
		url.Values{"token": {"x"}}, map[string]string{"X-API-Key": latchtest.APIKey}))
	if a := newFrom(t, "127.0.0.2").do("GET", env.URL+"/api/clients", nil, map[string]string{"X-API-Key": latchtest.APIKey}); a.status != http.StatusOK {
		t.Fatalf("right key from another address: %d %s", a.status, a.body)
	}
}

// An anonymous flood of authorization requests from one address is cut off
// at the limit: JSON for programs, a short page for browsers.
func TestAuthorizeFloodIsLimited(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: limits(func(l *config.LimitsConfig) { l.AuthorizePerMinute = 5 })})
	c := env.NativeClient()
	q := authParams(c.ID, c.RedirectURIs[0], oauth2.GenerateVerifier()).Encode()
	flood := newFrom(t, "127.0.0.1")
	for i := range 5 {
		if a := flood.do("GET", env.URL+"/oauth2/authorize?"+q, nil, nil); a.status == http.StatusTooManyRequests {
			t.Fatalf("request %d within the limit refused", i+1)
		}
	}
	wantLimited(t, "6th authorization request", flood.do("GET", env.URL+"/oauth2/authorize?"+q, nil, nil))
	page := flood.do("POST", env.URL+"/oauth2/authorize", url.Values{"client_id": {c.ID}}, map[string]string{"Accept": "text/html"})
	if page.status != http.StatusTooManyRequests || page.header.Get("Retry-After") == "" || !strings.Contains(page.body, "Too many requests") {
		t.Fatalf("browser: %d %q %s", page.status, page.header.Get("Retry-After"), page.body)
	}
	if a := newFrom(t, "127.0.0.2").do("GET", env.URL+"/oauth2/authorize?"+q, nil, nil); a.status == http.StatusTooManyRequests {
		t.Fatal("another address is limited")
	}
	_, m := latchtest.NewBrowser(t).Get(env.URL + "/metrics")
	if !strings.Contains(string(m), `latch_rate_limited_total{limit="authorize"} 2`) {
		t.Errorf("refusals not counted:\n%s", m)
	}
}

// The flood: anonymous authorization and pushed requests with
// parameters just under 16 KiB, from one address. With the limits the
// stored rows stop at the limit and the database file stays small.
func TestAnonymousFloodKeepsDatabaseBounded(t *testing.T) {
	const limit, flood = 10, 150
	dir := t.TempDir()
	env := latchtest.Start(t, latchtest.Options{DSN: "sqlite://" + filepath.Join(dir, "latch.db"),
		Configure: limits(func(l *config.LimitsConfig) { l.AuthorizePerMinute, l.PARPerMinute = limit, limit })})
	c := env.NativeClient()
	params := authParams(c.ID, c.RedirectURIs[0], oauth2.GenerateVerifier())
	params.Set("state", strings.Repeat("s", 15<<10))
	q := params.Encode()
	attacker := newFrom(t, "127.0.0.1")
	accepted := 0
	for range flood {
		if a := attacker.do("GET", env.URL+"/oauth2/authorize?"+q, nil, nil); a.status != http.StatusTooManyRequests {
			accepted++
		}
		if a := attacker.do("POST", env.URL+"/oauth2/par", params, nil); a.status != http.StatusTooManyRequests {
			accepted++
		}
	}
	if accepted > 2*limit+2 { // a token may refill while the flood runs
		t.Errorf("%d of %d requests got through a limit of %d per endpoint", accepted, 2*flood, limit)
	}
	db := env.App.Store.DB()
	for _, table := range []string{"auth_sessions", "par_requests"} {
		var n int64
		if err := db.Table(table).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n > limit+1 {
			t.Errorf("%s holds %d rows after a flood of %d, limit %d", table, n, flood, limit)
		}
	}
	var size int64
	for _, f := range []string{"latch.db", "latch.db-wal"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil {
			size += st.Size()
		}
	}
	// Unlimited, the flood stores about 2 x 150 x 15 KiB = 4.5 MiB.
	if size > 2<<20 {
		t.Errorf("database files grew to %d bytes", size)
	}
}

// The hook dynamic registration will mount: per-address, JSON 429.
func TestRegistrationLimitHook(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: limits(func(l *config.LimitsConfig) { l.RegistrationPerMinute = 2 })})
	env.Server.Echo().POST("/test/register", func(c echo.Context) error { return c.NoContent(http.StatusCreated) }, env.Server.RegistrationLimit())
	f := newFrom(t, "127.0.0.1")
	for range 2 {
		if a := f.do("POST", env.URL+"/test/register", url.Values{}, nil); a.status != http.StatusCreated {
			t.Fatalf("within the limit: %d", a.status)
		}
	}
	wantLimited(t, "3rd registration", f.do("POST", env.URL+"/test/register", url.Values{}, nil))
}

// Failed client assertions count against the client they name (their sub),
// so a guesser cannot dodge the per-client limit by switching methods.
func TestFailedClientAssertionsAreLimited(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: limits(func(l *config.LimitsConfig) {
		l.FailedCredentialsPerIP, l.FailedCredentialsPerClient = 100, 3
	})})
	worker := env.CreateClient(clients.Metadata{ClientName: "worker", GrantTypes: []string{"client_credentials"}})
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	forged := b64(`{"alg":"RS256","typ":"JWT"}`) + "." +
		b64(`{"iss":"`+worker.ID+`","sub":"`+worker.ID+`","aud":"`+env.URL+`/oauth2/token","exp":4102444800,"jti":"x"}`) + "." + b64("not a signature")
	guesser := newFrom(t, "127.0.0.1")
	for i := range 3 {
		a := guesser.do("POST", env.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {forged}}, nil)
		if a.status != http.StatusUnauthorized {
			t.Fatalf("forged assertion %d: %d %s", i+1, a.status, a.body)
		}
	}
	wantLimited(t, "the client's right secret after 3 forged assertions", newFrom(t, "127.0.0.2").token(env, worker.ID, worker.Secret))
}
