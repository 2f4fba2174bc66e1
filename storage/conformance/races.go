package conformance

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchhq/latch/storage"
)

// racers is how many goroutines contend in each race.
const racers = 24

// inTx runs fn the way fosite's handlers do: BeginTX, work, Commit, or
// Rollback on error.
func inTx(f *fixture, fn func(ctx context.Context) error) error {
	ctx, err := f.s.BeginTX(f.ctx)
	if err != nil {
		return err
	}
	if err := fn(ctx); err != nil {
		_ = f.s.Rollback(ctx)
		return err
	}
	return f.s.Commit(ctx)
}

func isAny(targets ...error) func(error) bool {
	return func(err error) bool {
		for _, t := range targets {
			if errors.Is(err, t) {
				return true
			}
		}
		return false
	}
}

func testRaceCode(t *testing.T, f *fixture) {
	must(t, f.s.CreateAuthorizeCodeSession(f.ctx, "code", f.request("req-1")))
	wins := race(t, racers, func(i int) error {
		return inTx(f, func(ctx context.Context) error {
			if _, err := f.s.GetAuthorizeCodeSession(ctx, "code", newSession()); err != nil {
				return err
			}
			if err := f.s.InvalidateAuthorizeCodeSession(ctx, "code"); err != nil {
				return err
			}
			return f.s.CreateAccessTokenSession(ctx, fmt.Sprintf("at-%d", i), f.request("req-1"))
		})
	}, isAny(fosite.ErrInvalidatedAuthorizeCode, fosite.ErrSerializationFailure))
	if wins != 1 {
		t.Fatalf("%d goroutines redeemed one code, want exactly 1", wins)
	}
	if n := f.count("oauth2_tokens", "kind = ?", "access"); n != 1 {
		t.Fatalf("%d access tokens issued for one code, want 1", n)
	}
}

func testRaceRefresh(t *testing.T, f *fixture) {
	must(t, f.s.CreateRefreshTokenSession(f.ctx, "rt", "", f.request("req-1")))
	wins := race(t, racers, func(i int) error {
		return inTx(f, func(ctx context.Context) error {
			if _, err := f.s.GetRefreshTokenSession(ctx, "rt", newSession()); err != nil {
				return err
			}
			if err := f.s.RotateRefreshToken(ctx, "req-1", "rt"); err != nil {
				return err
			}
			return f.s.CreateRefreshTokenSession(ctx, fmt.Sprintf("rt-%d", i), "", f.request("req-1"))
		})
	}, isAny(fosite.ErrInactiveToken, fosite.ErrSerializationFailure))
	if wins != 1 {
		t.Fatalf("%d goroutines rotated one refresh token, want exactly 1", wins)
	}
	if n := f.count("oauth2_tokens", "kind = ? AND active", "refresh"); n != 1 {
		t.Fatalf("%d active refresh tokens after the race, want 1", n)
	}
}

func testRaceDecide(t *testing.T, f *fixture) {
	must(t, f.s.CreateAuthSession(f.ctx, &storage.AuthSession{ID: "as", ClientID: f.client.ID, BrowserHash: "b", ExpiresAt: f.clock.Now().Add(time.Minute)}))
	wins := race(t, racers, func(i int) error {
		_, err := f.s.DecideAuthSession(f.ctx, "as", storage.Decision{Approve: i%2 == 0, Subject: fmt.Sprintf("user-%d", i)})
		return err
	}, isAny(storage.ErrStateConflict, fosite.ErrSerializationFailure))
	if wins != 1 {
		t.Fatalf("%d goroutines decided one auth session, want exactly 1", wins)
	}
}

func testRaceComplete(t *testing.T, f *fixture) {
	must(t, f.s.CreateAuthSession(f.ctx, &storage.AuthSession{ID: "as", ClientID: f.client.ID, BrowserHash: "b", ExpiresAt: f.clock.Now().Add(time.Minute)}))
	_, err := f.s.DecideAuthSession(f.ctx, "as", storage.Decision{Approve: true, Subject: "u"})
	must(t, err)
	wins := race(t, racers, func(int) error {
		_, err := f.s.CompleteAuthSession(f.ctx, "as", "b")
		return err
	}, isAny(storage.ErrStateConflict, fosite.ErrSerializationFailure))
	if wins != 1 {
		t.Fatalf("%d goroutines completed one auth session, want exactly 1", wins)
	}
}

func testRaceJTI(t *testing.T, f *fixture) {
	exp := f.clock.Now().Add(time.Minute)
	wins := race(t, racers, func(int) error {
		return f.s.MarkJTI(f.ctx, "dpop", "the-jti", exp)
	}, isAny(storage.ErrReplay, fosite.ErrSerializationFailure))
	if wins != 1 {
		t.Fatalf("%d goroutines marked one jti, want exactly 1", wins)
	}
}

func testRaceCreateClient(t *testing.T, f *fixture) {
	wins := race(t, racers, func(int) error {
		return f.s.CreateClient(f.ctx, &storage.Client{ID: "same-id"})
	}, isAny(fosite.ErrSerializationFailure))
	if wins != 1 {
		t.Fatalf("%d goroutines created one client id, want exactly 1", wins)
	}
}

func testJanitor(t *testing.T, f *fixture) {
	ctx := f.ctx
	now := f.clock.Now()
	// One request's rows, with the fixture's lifetimes: code 1m, access 1h,
	// refresh 24h.
	must(t, f.s.CreateAuthorizeCodeSession(ctx, "code", f.request("req-1")))
	must(t, f.s.CreatePKCERequestSession(ctx, "code", f.request("req-1")))
	must(t, f.s.CreateOpenIDConnectSession(ctx, "raw-code", f.request("req-1")))
	must(t, f.s.CreateAccessTokenSession(ctx, "at", f.request("req-1")))
	must(t, f.s.CreateRefreshTokenSession(ctx, "rt", "at", f.request("req-1")))
	must(t, f.s.RotateRefreshToken(ctx, "req-1", "rt"))
	for i := range 25 {
		must(t, f.s.CreateAuthSession(ctx, &storage.AuthSession{ID: fmt.Sprintf("as-%d", i), ClientID: f.client.ID, ExpiresAt: now.Add(10 * time.Minute)}))
		must(t, f.s.MarkJTI(ctx, "dpop", fmt.Sprintf("jti-%d", i), now.Add(time.Minute)))
	}
	must(t, f.s.CreateLoginSession(ctx, &storage.LoginSession{IDHash: "l", Subject: "u", AuthTime: now, ExpiresAt: now.Add(time.Hour)}))
	must(t, f.s.RememberAuthorization(ctx, "u", f.client.ID, []string{"openid"}))
	opts := storage.JanitorOptions{BatchSize: 7, ReplayGrace: time.Hour}

	res, err := f.s.Purge(ctx, opts)
	must(t, err)
	if res.Total() != 0 {
		t.Fatalf("nothing has expired yet, purged %v", res)
	}

	f.clock.Advance(2 * time.Minute) // code, pkce, oidc, jtis expired; code within grace, jtis within the skew margin
	res, err = f.s.Purge(ctx, opts)
	must(t, err)
	if res["seen_jtis"] != 0 || res["oauth2_tokens/pkce"] != 1 || res["oauth2_tokens/oidc"] != 1 || res["oauth2_tokens/code"] != 0 {
		t.Fatalf("after 2m: %v", res)
	}
	_, err = f.s.GetAuthorizeCodeSession(ctx, "code", newSession())
	must(t, err) // kept for replay detection during the grace

	f.clock.Advance(2 * time.Hour) // sessions, access token, code+grace expired
	res, err = f.s.Purge(ctx, opts)
	must(t, err)
	if res["seen_jtis"] != 25 || res["auth_sessions"] != 25 || res["login_sessions"] != 1 || res["oauth2_tokens/access"] != 1 || res["oauth2_tokens/code"] != 1 || res["oauth2_tokens/refresh"] != 0 {
		t.Fatalf("after 2h: %v", res)
	}
	_, err = f.s.GetRefreshTokenSession(ctx, "rt", newSession())
	wantErr(t, "spent refresh token before its expiry", err, fosite.ErrInactiveToken)

	f.clock.Advance(22 * time.Hour) // 24h2m: refresh expired, within grace
	res, err = f.s.Purge(ctx, opts)
	must(t, err)
	if res["oauth2_tokens/refresh"] != 0 {
		t.Fatalf("refresh token purged within the replay grace: %v", res)
	}
	f.clock.Advance(time.Hour)
	res, err = f.s.Purge(ctx, opts)
	must(t, err)
	if res["oauth2_tokens/refresh"] != 1 {
		t.Fatalf("refresh token past expiry and grace not purged: %v", res)
	}
	for _, table := range []string{"oauth2_tokens", "auth_sessions", "login_sessions", "seen_jtis"} {
		if n := f.count(table, ""); n != 0 {
			t.Fatalf("%s keeps %d rows after everything expired", table, n)
		}
	}
	if n := f.count("authorizations", ""); n != 1 {
		t.Fatal("the janitor must not touch remembered authorizations (they do not expire)")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.s.Purge(cancelled, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("purge with a cancelled context: %v", err)
	}
}
