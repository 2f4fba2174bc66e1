package scaleout_test

import (
	"net/http"
	"testing"

	"github.com/latchhq/latch/latchtest"
)

// rounds repeats each race so a lucky interleaving cannot pass it.
const rounds = 20

func TestRaceRefreshTokenOneWinner(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(*testing.T) string) {
		env := latchtest.Start(t, latchtest.Options{DSN: dsn(t)})
		c := env.WebClient("client_secret_basic")
		for round := range rounds {
			tok := exchange(t, env.URL, c, getCode(t, env, c, openidScope))
			if tok.status != 200 {
				t.Fatalf("round %d: exchange: %s", round, tok)
			}
			rt := str(t, tok, "refresh_token")
			rs := parallel(50, func(int) result { return refresh(t, env.URL, c, rt) })
			byStatus, byError := tally(t, rs)
			if byStatus[200] != 1 || byStatus[400] != 49 || byError["invalid_grant"] != 49 {
				t.Fatalf("round %d: 50 concurrent refreshes: statuses %v errors %v, want one 200 and 49 invalid_grant", round, byStatus, byError)
			}
			// Reuse policy: the losers replayed a spent token, so the whole
			// family is revoked, the winner's fresh tokens included.
			for _, r := range rs {
				if r.status == 200 {
					if active(t, env, str(t, r, "refresh_token")) || active(t, env, str(t, r, "access_token")) {
						t.Fatalf("round %d: the family survived a refresh-token replay", round)
					}
				}
			}
		}
	})
}

func TestRaceCodeExchangeOneWinner(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(*testing.T) string) {
		env := latchtest.Start(t, latchtest.Options{DSN: dsn(t)})
		c := env.WebClient("client_secret_basic")
		for round := range rounds {
			f := getCode(t, env, c, openidScope)
			rs := parallel(50, func(int) result { return exchange(t, env.URL, c, f) })
			byStatus, byError := tally(t, rs)
			if byStatus[200] != 1 || byError["invalid_grant"] != 49 {
				t.Fatalf("round %d: 50 concurrent exchanges of one code: statuses %v errors %v, want one 200 and 49 invalid_grant", round, byStatus, byError)
			}
			for _, r := range rs {
				if r.status == 200 {
					if active(t, env, str(t, r, "access_token")) || active(t, env, str(t, r, "refresh_token")) {
						t.Fatalf("round %d: tokens of a replayed code are still active", round)
					}
				}
			}
		}
	})
}

func TestRaceApproveOneWinner(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(*testing.T) string) {
		env := latchtest.Start(t, latchtest.Options{DSN: dsn(t)})
		c := env.WebClient("client_secret_basic")
		for round := range rounds {
			b := latchtest.NewBrowser(t)
			id := env.StartAuthorize(b, authURL(env.URL, c, "verifier-"+randomish(t)))
			rs := parallel(20, func(int) result {
				status, body := env.API("POST", "/api/auth_session/"+id+"/approve", map[string]any{"user": "user-1"})
				return result{status, body}
			})
			byStatus, _ := tally(t, rs)
			if byStatus[200] != 1 || byStatus[http.StatusConflict] != 19 {
				t.Fatalf("round %d: 20 concurrent approvals: statuses %v, want one 200 and 19 409", round, byStatus)
			}
			for _, r := range rs {
				if r.status == 200 {
					loc := env.Resume(b, str(t, r, "redirect_uri"))
					if loc.Query().Get("code") == "" {
						t.Fatalf("round %d: the winning approval did not yield a code: %s", round, loc)
					}
				}
			}
		}
	})
}
