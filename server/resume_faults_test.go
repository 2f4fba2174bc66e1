package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2"

	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage/pgtest"
)

// failCodeWrites makes the real database refuse to store authorization
// codes while fail_codes has a row: a trigger, so the failure happens where
// a crash or outage would, inside the database, with nothing mocked.
func failCodeWrites(t *testing.T, env *latchtest.Env, postgres bool) {
	t.Helper()
	stmts := []string{
		`CREATE TABLE fail_codes (x INTEGER)`,
		`CREATE TRIGGER fail_code_insert BEFORE INSERT ON oauth2_tokens
		 WHEN NEW.kind = 'code' AND EXISTS (SELECT 1 FROM fail_codes)
		 BEGIN SELECT RAISE(ABORT, 'injected failure'); END`,
	}
	if postgres {
		stmts = []string{
			`CREATE TABLE fail_codes (x INTEGER)`,
			`CREATE FUNCTION fail_code() RETURNS trigger AS $$ BEGIN
			   IF NEW.kind = 'code' AND EXISTS (SELECT 1 FROM fail_codes) THEN RAISE EXCEPTION 'injected failure'; END IF;
			   RETURN NEW; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER fail_code_insert BEFORE INSERT ON oauth2_tokens FOR EACH ROW EXECUTE FUNCTION fail_code()`,
		}
	}
	for _, q := range append(stmts, `INSERT INTO fail_codes VALUES (1)`) {
		if err := env.App.Store.DB().Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
}

// TestResumeIsAtomic: when storing the code fails during resume, nothing is
// half-written (the session stays approved, no login session, no code) and
// the browser gets a 503 page, not a redirect; following the same link
// again from the same browser then yields a code, once.
func TestResumeIsAtomic(t *testing.T) {
	for name, dsn := range map[string]func(testing.TB) string{
		"SQLite":   func(testing.TB) string { return "" },
		"Postgres": pgtest.DSN,
	} {
		t.Run(name, func(t *testing.T) {
			env := latchtest.Start(t, latchtest.Options{DSN: dsn(t)})
			r := newRP(t, env, env.WebClient("client_secret_basic"), oauth2.AuthStyleInHeader, "openid")
			verifier := oauth2.GenerateVerifier()
			b := latchtest.NewBrowser(t)
			id := env.StartAuthorize(b, r.conf.AuthCodeURL("atomic-state-123", oauth2.S256ChallengeOption(verifier)))
			redirect := env.Approve(id, map[string]any{"user": "alice"})
			failCodeWrites(t, env, name == "Postgres")

			resp, body := b.Get(redirect)
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Location") != "" {
				t.Fatalf("resume with a failing code write: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			if status, view := env.API("GET", "/api/auth_session/"+id, nil); status != 200 || view["state"] != "approved" {
				t.Fatalf("after the failure the session is %d %v, want still approved", status, view)
			}
			if n := count(t, env, "login_sessions") + count(t, env, "oauth2_tokens"); n != 0 {
				t.Fatalf("%d login sessions or tokens left by the failed resume", n)
			}

			if err := env.App.Store.DB().Exec(`DELETE FROM fail_codes`).Error; err != nil {
				t.Fatal(err)
			}
			loc := env.Resume(b, redirect)
			if _, err := r.conf.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
				t.Fatalf("code from the retry: %v", err)
			}
			if resp, _ := b.Get(redirect); resp.StatusCode != http.StatusConflict {
				t.Fatalf("third visit: %d, want 409", resp.StatusCode)
			}
		})
	}
}

// TestAuthorizeDuringOutage: with PostgreSQL refusing connections, the
// authorization endpoint answers a 503 temporarily_unavailable page, never
// a redirect that would end the client's sign-in; once the database is
// back, the same request works without a restart.
func TestAuthorizeDuringOutage(t *testing.T) {
	dsn := pgtest.DSN(t)
	env := latchtest.Start(t, latchtest.Options{DSN: dsn})
	c := env.WebClient("client_secret_basic")
	authURL := env.URL + "/oauth2/authorize?" + authParams(c.ID, c.RedirectURIs[0], oauth2.GenerateVerifier()).Encode()

	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	exec := func(q string) {
		t.Helper()
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	exec(fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS false`, db))
	exec(fmt.Sprintf(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'`, db))
	defer exec(fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS true`, db))

	for i := range 3 {
		resp, body := latchtest.NewBrowser(t).Get(authURL)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Location") != "" {
			t.Fatalf("authorize #%d during the outage: %d %s %s", i, resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}
	resp, body := send(t, "GET", authURL, nil, map[string]string{"Accept": "application/json"})
	wantOAuthError(t, "JSON during the outage", resp, body, 503, "temporarily_unavailable")

	exec(fmt.Sprintf(`ALTER DATABASE %q ALLOW_CONNECTIONS true`, db))
	env.StartAuthorize(latchtest.NewBrowser(t), authURL)
}
