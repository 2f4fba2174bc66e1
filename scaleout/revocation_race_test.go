package scaleout_test

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
)

// instancePair starts two instances on one database, both answering for
// the first one's issuer as instances behind one load balancer do. On
// SQLite they share one file.
func instancePair(t *testing.T, dsn string) (a, b *latchtest.Env) {
	t.Helper()
	if dsn == "" {
		dsn = "sqlite://" + filepath.Join(t.TempDir(), "latch.db")
	}
	a = latchtest.Start(t, latchtest.Options{DSN: dsn})
	b = latchtest.Start(t, latchtest.Options{DSN: dsn, Configure: func(c *config.Config) { c.Issuer = a.URL }})
	return a, b
}

// family is the token family a refresher keeps rotating.
type family struct {
	mu       sync.Mutex
	first    string // the refresh token from the code exchange (spent after one rotation)
	at, rt   string // the newest pair
	rotation int
}

func (f *family) newest() (at, rt string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.at, f.rt, f.rotation
}

// refreshLoop rotates f across envs until a refresh fails or stop closes;
// it returns when its last request has answered.
func refreshLoop(t *testing.T, envs []*latchtest.Env, c latchtest.Client, f *family, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, rt, _ := f.newest()
			r := refresh(t, envs[i%len(envs)].URL, c, rt)
			if r.status != http.StatusOK {
				if r.status >= 500 || r.status == 0 {
					t.Errorf("refresh: %s", r)
				}
				return
			}
			f.mu.Lock()
			f.at, f.rt = r.body["access_token"].(string), r.body["refresh_token"].(string)
			f.rotation++
			f.mu.Unlock()
		}
	}()
	return done
}

// revocationPath revokes f's grant as one client or API caller would, and
// fails the test when the revocation itself is refused.
type revocationPath struct {
	name   string
	revoke func(t *testing.T, env *latchtest.Env, c latchtest.Client, f *family)
}

var revocationPaths = []revocationPath{
	{"RFC7009CurrentToken", func(t *testing.T, env *latchtest.Env, c latchtest.Client, f *family) {
		_, rt, _ := f.newest()
		if r := post(t, env.URL+"/oauth2/revoke", url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}, c); r.status != http.StatusOK {
			t.Errorf("revoke: %s", r)
		}
	}},
	{"ReuseOfSpentToken", func(t *testing.T, env *latchtest.Env, c latchtest.Client, f *family) {
		if r := refresh(t, env.URL, c, f.first); r.status != http.StatusBadRequest || r.body["error"] != "invalid_grant" {
			t.Errorf("reuse of a spent refresh token: %s", r)
		}
	}},
	{"DeleteAuthorization", func(t *testing.T, env *latchtest.Env, c latchtest.Client, _ *family) {
		if status, out := env.API("DELETE", "/api/users/user-1/authorizations/"+c.ID, nil); status != http.StatusNoContent {
			t.Errorf("DELETE authorization: %d %v", status, out)
		}
	}},
}

// TestRaceRevocationBeatsRefresh revokes a grant through each path while a
// refresher keeps rotating it across two instances. Once the revocation has
// returned, the refresher's newest tokens (whatever its in-flight refresh
// brought back) must be inactive and must not refresh: a revocation that
// loses against an in-flight rotation leaves the grant alive.
func TestRaceRevocationBeatsRefresh(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(*testing.T) string) {
		a, b := instancePair(t, dsn(t))
		envs := []*latchtest.Env{a, b}
		for _, path := range revocationPaths {
			t.Run(path.name, func(t *testing.T) {
				c := a.WebClient("client_secret_basic")
				escapes := 0
				for round := range rounds {
					// Remembered, so that DELETE finds an authorization even
					// on code that only revokes remembered grants.
					verifier := "race-verifier-" + randomish(t)
					loc := a.Authorize(latchtest.NewBrowser(t), authURL(a.URL, c, verifier),
						map[string]any{"user": "user-1", "remember": true})
					tok := exchange(t, b.URL, c, flow{verifier: verifier, code: loc.Query().Get("code")})
					if tok.status != http.StatusOK {
						t.Fatalf("round %d: exchange: %s", round, tok)
					}
					f := &family{first: str(t, tok, "refresh_token"), at: str(t, tok, "access_token"), rt: str(t, tok, "refresh_token")}
					// Revoke mid-stream: the refresher has rotated on both
					// instances and has a request in flight.
					stop := refreshUntil(t, envs, c, f, 2+round%3)
					path.revoke(t, envs[round%2], c, f)
					stop()
					at, rt, _ := f.newest()
					alive := []string{}
					if active(t, a, at) {
						alive = append(alive, "access token")
					}
					if active(t, b, rt) {
						alive = append(alive, "refresh token")
					}
					if r := refresh(t, a.URL, c, rt); r.status == http.StatusOK {
						alive = append(alive, "refresh succeeded")
					}
					if len(alive) > 0 {
						escapes++
						t.Errorf("round %d: after the revocation returned: %v", round, alive)
					}
				}
				if escapes > 0 {
					t.Errorf("%d/%d rounds left the grant alive after %s", escapes, rounds, path.name)
				}
			})
		}
	})
}

// TestRaceRememberAgainstRevocation approves with remember while the same
// user's authorization of the client is revoked. Either order is fine —
// revoked then remembered again (only the new scopes), or remembered then
// revoked (nothing) — but never the revoked scopes coming back.
func TestRaceRememberAgainstRevocation(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(*testing.T) string) {
		a, b := instancePair(t, dsn(t))
		c := a.WebClient("client_secret_basic")
		const users = 5 // independent races per round
		escapes := 0
		for round := range rounds {
			var wg sync.WaitGroup
			var mu sync.Mutex
			for u := range users {
				user := fmt.Sprintf("user-%d-%d", round, u)
				old := a.StartAuthorize(latchtest.NewBrowser(t), authURLScope(a.URL, c, "old-"+randomish(t), "openid email"))
				a.Approve(old, map[string]any{"user": user, "remember": true})
				next := a.StartAuthorize(latchtest.NewBrowser(t), authURLScope(a.URL, c, "new-"+randomish(t), "openid profile"))
				wg.Add(1)
				go func() {
					defer wg.Done()
					rs := parallel(2, func(i int) result {
						if i == 0 {
							status, out := envsOf(a, b)[u%2].API("POST", "/api/auth_session/"+next+"/approve",
								map[string]any{"user": user, "remember": true})
							return result{status, out}
						}
						status, out := envsOf(a, b)[(u+1)%2].API("DELETE", "/api/users/"+user+"/authorizations/"+c.ID, nil)
						return result{status, out}
					})
					if rs[0].status != http.StatusOK || rs[1].status != http.StatusNoContent {
						t.Errorf("approve %s, revoke %s", rs[0], rs[1])
					}
					_, out := a.API("GET", "/api/users/"+user+"/authorizations", nil)
					for _, e := range out["authorizations"].([]any) {
						m := e.(map[string]any)
						if m["client_id"] == c.ID && slices.Contains(m["scopes"].([]any), any("email")) {
							mu.Lock()
							escapes++
							mu.Unlock()
							t.Errorf("round %d %s: revoked scope came back: %v", round, user, m["scopes"])
						}
					}
				}()
			}
			wg.Wait()
		}
		if escapes > 0 {
			t.Errorf("%d/%d races resurrected revoked scopes", escapes, rounds*users)
		}
	})
}

func envsOf(a, b *latchtest.Env) []*latchtest.Env { return []*latchtest.Env{a, b} }

// TestRaceClientDeleteBeatsRefresh deletes a client while a refresher keeps
// rotating one of its grants across two instances: once the DELETE has
// returned, no token row of the client may exist (a pair committed by the
// in-flight refresh would live on, and another instance's client cache
// would still accept it for a while).
func TestRaceClientDeleteBeatsRefresh(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(*testing.T) string) {
		a, b := instancePair(t, dsn(t))
		envs := []*latchtest.Env{a, b}
		escapes := 0
		for round := range rounds {
			c := a.WebClient("client_secret_basic")
			tok := exchange(t, b.URL, c, getCode(t, a, c, openidScope))
			if tok.status != http.StatusOK {
				t.Fatalf("round %d: exchange: %s", round, tok)
			}
			f := &family{first: str(t, tok, "refresh_token"), at: str(t, tok, "access_token"), rt: str(t, tok, "refresh_token")}
			stop := refreshUntil(t, envs, c, f, 2+round%3)
			status, out := envs[round%2].API("DELETE", "/api/clients/"+c.ID, nil)
			stop()
			if status != http.StatusNoContent {
				t.Fatalf("round %d: DELETE client: %d %v", round, status, out)
			}
			var left int64
			if err := a.App.Store.DB().Table("oauth2_tokens").Where("client_id = ? AND active", c.ID).Count(&left).Error; err != nil {
				t.Fatal(err)
			}
			if left > 0 {
				escapes++
				t.Errorf("round %d: %d active tokens of the deleted client", round, left)
			}
		}
		if escapes > 0 {
			t.Errorf("%d/%d client deletions left tokens behind", escapes, rounds)
		}
	})
}

// refreshUntil starts refreshLoop and returns once the family has rotated
// at least n times, so what the caller does next races a refresher that has
// rotated (on both instances, for n >= 2) and has a request in flight.
// stop ends the loop and waits for it.
func refreshUntil(t *testing.T, envs []*latchtest.Env, c latchtest.Client, f *family, n int) (stop func()) {
	t.Helper()
	quit := make(chan struct{})
	done := refreshLoop(t, envs, c, f, quit)
	stop = func() { close(quit); <-done }
	deadline := time.Now().Add(10 * time.Second)
	for _, _, got := f.newest(); got < n; _, _, got = f.newest() {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("the refresher made no progress: %d of %d rotations in 10s", got, n)
		}
		time.Sleep(200 * time.Microsecond)
	}
	return stop
}
