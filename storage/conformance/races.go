package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
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
		_, err := f.s.DecideAuthSession(f.ctx, "as", storage.Decision{Approve: i%2 == 0, Subject: fmt.Sprintf("user-%d", i), Verifier: "v"})
		return err
	}, isAny(storage.ErrStateConflict, fosite.ErrSerializationFailure))
	if wins != 1 {
		t.Fatalf("%d goroutines decided one auth session, want exactly 1", wins)
	}
}

func testRaceComplete(t *testing.T, f *fixture) {
	must(t, f.s.CreateAuthSession(f.ctx, &storage.AuthSession{ID: "as", ClientID: f.client.ID, BrowserHash: "b", ExpiresAt: f.clock.Now().Add(time.Minute)}))
	_, err := f.s.DecideAuthSession(f.ctx, "as", storage.Decision{Approve: true, Subject: "u", Verifier: "v"})
	must(t, err)
	wins := race(t, racers, func(int) error {
		_, err := f.s.CompleteAuthSession(f.ctx, "as", "b", "v")
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
	if n := f.count("grants", ""); n != 1 {
		t.Fatalf("%d grant rows after every token is gone, want only the remembered pair's", n)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.s.Purge(cancelled, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("purge with a cancelled context: %v", err)
	}
}

// testRaceRevokeRotate keeps one refresh family rotating (fosite's
// transaction: rotate, insert access, insert refresh) while a revocation
// runs through each entry point. Once the revocation returns, no row of the
// family may be active: the refresher's in-flight successor included.
func testRaceRevokeRotate(t *testing.T, f *fixture) {
	ctx := f.ctx
	revokers := []struct {
		name   string
		revoke func(requestID string) error
	}{
		{"RevokeGrant", func(id string) error { return f.s.RevokeGrant(ctx, id) }},
		{"RevokeRefreshToken", func(id string) error { return f.s.RevokeRefreshToken(ctx, id) }},
		{"DeleteAuthorization", func(string) error { return f.s.DeleteAuthorization(ctx, "user-1", f.client.ID) }},
		{"RevokeUserClientTokens", func(string) error { return f.s.RevokeUserClientTokens(ctx, "user-1", f.client.ID) }},
	}
	for round := range 20 {
		rv := revokers[round%len(revokers)]
		id := fmt.Sprintf("race-%d", round)
		sig := func(kind string, i int) string { return fmt.Sprintf("%s-%s-%d", kind, id, i) }
		must(t, f.s.CreateAccessTokenSession(ctx, sig("at", 0), f.request(id)))
		must(t, f.s.CreateRefreshTokenSession(ctx, sig("rt", 0), sig("at", 0), f.request(id)))
		var rotations atomic.Int64
		var stop atomic.Bool
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; !stop.Load(); i++ {
				err := inTx(f, func(ctx context.Context) error {
					if err := f.s.RotateRefreshToken(ctx, id, sig("rt", i)); err != nil {
						return err
					}
					if err := f.s.CreateAccessTokenSession(ctx, sig("at", i+1), f.request(id)); err != nil {
						return err
					}
					return f.s.CreateRefreshTokenSession(ctx, sig("rt", i+1), sig("at", i+1), f.request(id))
				})
				if err != nil {
					return // revoked (or lost to the revoker): the family is done
				}
				rotations.Add(1)
			}
		}()
		deadline := time.Now().Add(10 * time.Second)
		for rotations.Load() < int64(1+round%3) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
		must(t, rv.revoke(id))
		stop.Store(true)
		<-done
		if n := f.count("oauth2_tokens", "request_id = ? AND active AND kind IN (?, ?)", id, "access", "refresh"); n != 0 {
			t.Fatalf("round %d (%s after %d rotations): %d tokens of the family active after the revocation returned",
				round, rv.name, rotations.Load(), n)
		}
	}
}

// testRaceRememberRevoke remembers consent while the same authorization is
// revoked: the outcome is one order or the other, never the revoked scopes
// written back by a remember that read them before the revocation.
func testRaceRememberRevoke(t *testing.T, f *fixture) {
	ctx := f.ctx
	for round := range 20 {
		user := fmt.Sprintf("user-%d", round)
		must(t, f.s.RememberAuthorization(ctx, user, f.client.ID, []string{"openid", "email"}))
		errs := make([]error, 2)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if i == 0 {
					errs[i] = f.s.RememberAuthorization(ctx, user, f.client.ID, []string{"openid", "profile"})
				} else {
					errs[i] = f.s.DeleteAuthorization(ctx, user, f.client.ID)
				}
			}()
		}
		close(start)
		wg.Wait()
		must(t, errs[0])
		must(t, errs[1])
		a, err := f.s.Authorization(ctx, user, f.client.ID)
		if err != nil && !errors.Is(err, fosite.ErrNotFound) {
			t.Fatal(err)
		}
		if a != nil && slices.Contains(a.Scopes, "email") {
			t.Fatalf("round %d: revoked scope remembered again: %v", round, a.Scopes)
		}
	}
}
