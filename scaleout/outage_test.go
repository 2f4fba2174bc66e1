package scaleout_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
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

	u, _ := url.Parse(dsn)
	db := strings.TrimPrefix(u.Path, "/")
	admin := *u
	admin.Path = "/postgres"
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	sql := func(q string) {
		t.Helper()
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	sql(`ALTER DATABASE ` + db + ` ALLOW_CONNECTIONS false`)
	sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '` + db + `'`)

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

	sql(`ALTER DATABASE ` + db + ` ALLOW_CONNECTIONS true`)
	if r := get(t, env.URL+"/health/ready"); r.status != http.StatusOK {
		t.Fatalf("ready after the database came back: %s", r)
	}
	// The failed refresh spent nothing: the token still works, once.
	if r := refresh(t, env.URL, c, rt); r.status != 200 {
		t.Fatalf("refresh after the outage: %s", r)
	}
}

func get(t *testing.T, u string) result {
	req, _ := http.NewRequest("GET", u, nil)
	return do(t, req)
}
