package scaleout_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage/pgtest"
)

// TestDatabaseBrieflyUnavailable cuts Latch off its PostgreSQL database
// (new connections refused, open ones terminated), checks that readiness
// says so and that requests fail without a grant being half-spent, then
// lets the database back and checks that the same refresh token works.
func TestDatabaseBrieflyUnavailable(t *testing.T) {
	dsn := pgtest.DSN(t)
	env := latchtest.Start(t, latchtest.Options{DSN: dsn})
	c := env.WebClient("client_secret_basic")
	tok := exchange(t, env.URL, c, getCode(t, env, c, openidScope))
	if tok.status != 200 {
		t.Fatalf("exchange: %s", tok)
	}
	rt := str(t, tok, "refresh_token")
	at := str(t, tok, "access_token")

	restore := cutDatabase(t, dsn)

	if r := get(t, env.URL+"/health/ready"); r.status != http.StatusServiceUnavailable {
		t.Fatalf("ready with the database away: %s", r)
	}
	if r := get(t, env.URL+"/health/alive"); r.status != http.StatusOK {
		t.Fatalf("alive with the database away: %s", r)
	}
	// Not invalid_client: the client did nothing wrong, it may retry.
	if r := refresh(t, env.URL, c, rt); r.status != http.StatusServiceUnavailable || r.body["error"] != "temporarily_unavailable" {
		t.Fatalf("refresh with the database away: %s, want 503 temporarily_unavailable", r)
	}
	unavailableEverywhere(t, env, c, at, rt)

	restore()
	if r := get(t, env.URL+"/health/ready"); r.status != http.StatusOK {
		t.Fatalf("ready after the database came back: %s", r)
	}
	// The failed refresh spent nothing: the token still works, once.
	if r := refresh(t, env.URL, c, rt); r.status != 200 {
		t.Fatalf("refresh after the outage: %s", r)
	}
}

// unavailableEverywhere checks that every endpoint that needs the database
// says 503 temporarily_unavailable while it is away: not 401 (a client
// would discard a valid token), not 500, and never a redirect that ends the
// client's authorization attempt.
func unavailableEverywhere(t *testing.T, env *latchtest.Env, c latchtest.Client, at, rt string) {
	t.Helper()
	form := func(path string, v url.Values, h map[string]string) *http.Request {
		req, _ := http.NewRequest("POST", env.URL+path, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, val := range h {
			req.Header.Set(k, val)
		}
		return req
	}
	userinfo, _ := http.NewRequest("GET", env.URL+"/userinfo", nil)
	userinfo.Header.Set("Authorization", "Bearer "+at)
	introspectClient := form("/oauth2/introspect", url.Values{"token": {at}}, nil)
	introspectClient.SetBasicAuth(c.ID, c.Secret)
	revoke := form("/oauth2/revoke", url.Values{"token": {rt}}, nil)
	revoke.SetBasicAuth(c.ID, c.Secret)
	apiGet, _ := http.NewRequest("GET", env.URL+"/api/clients/"+c.ID, nil)
	apiGet.Header.Set("X-API-Key", latchtest.APIKey)
	for name, req := range map[string]*http.Request{
		"userinfo":                     userinfo,
		"introspection as a client":    introspectClient,
		"introspection with X-API-Key": form("/oauth2/introspect", url.Values{"token": {at}}, map[string]string{"X-API-Key": latchtest.APIKey}),
		"revocation":                   revoke,
		"admin API":                    apiGet,
	} {
		if r := do(t, req); r.status != http.StatusServiceUnavailable || r.body["error"] != "temporarily_unavailable" {
			t.Errorf("%s with the database away: %s, want 503 temporarily_unavailable", name, r)
		}
	}
	// A browser at authorize: an answer, not a redirect to the client.
	resp, body := latchtest.NewBrowser(t).Get(authURL(env.URL, c, strings.Repeat("v", 43)))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Location") != "" {
		t.Errorf("authorize with the database away: %d Location %q %s, want 503 and no redirect", resp.StatusCode, resp.Header.Get("Location"), body)
	}
}

func get(t *testing.T, u string) result {
	req, _ := http.NewRequest("GET", u, nil)
	return do(t, req)
}

// cutDatabase takes dsn's database away as an outage does: no new
// connections, and every open one terminated. restore lets connections in
// again (it is also run at cleanup, so a failed test cannot leave the
// database shut for the next one).
func cutDatabase(t *testing.T, dsn string) (restore func()) {
	t.Helper()
	u, _ := url.Parse(dsn)
	db := strings.TrimPrefix(u.Path, "/")
	admin := *u
	admin.Path = "/postgres"
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		t.Fatal(err)
	}
	sql := func(q string) {
		t.Helper()
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	sql(`ALTER DATABASE ` + db + ` ALLOW_CONNECTIONS false`)
	sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '` + db + `'`)
	var once sync.Once
	restore = func() {
		once.Do(func() {
			sql(`ALTER DATABASE ` + db + ` ALLOW_CONNECTIONS true`)
			_ = conn.Close(ctx)
		})
	}
	t.Cleanup(restore)
	return restore
}
