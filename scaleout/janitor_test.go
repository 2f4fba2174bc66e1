package scaleout_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage"
	"github.com/latchhq/latch/storage/conformance"
)

// TestJanitorKeepsTablesBounded drives sustained sign-in traffic (flows,
// exchanges, refreshes, replay-cache entries) while an injected clock jumps
// ahead between rounds and the janitor runs as serve runs it. Every table
// that grows with traffic must level off instead of growing with it.
func TestJanitorKeepsTablesBounded(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(*testing.T) string) {
		// The clock starts at the real time. fosite stamps token expiry
		// from the real clock while the store judges it by this one, so as
		// the clock runs ahead tokens become purgeable once the lead passes
		// their lifetime plus the replay grace; sessions and replay-cache
		// entries age along this clock.
		clock := conformance.NewClockAt(time.Now())
		env := latchtest.Start(t, latchtest.Options{DSN: dsn(t), Now: clock.Now, Configure: func(c *config.Config) {
			c.Tokens.AccessTokenLifetime = time.Minute
			c.Tokens.RefreshTokenLifetime = 5 * time.Minute
			c.Tokens.CodeLifetime = 10 * time.Second
			c.Approval.SessionLifetime = 3 * time.Minute
			c.Login.SessionLifetime = 3 * time.Minute
			c.Janitor.ReplayGrace = 2 * time.Minute
			c.Janitor.BatchSize = 7 // several batches per table per pass
		}})
		c := env.WebClient("client_secret_basic")
		ctx := context.Background()
		const (
			rounds  = 14
			flows   = 8
			step    = time.Minute
			settled = 8 // by now refresh lifetime + grace (7m) has passed
		)
		tables := []string{"oauth2_tokens", "auth_sessions", "login_sessions", "seen_jtis"}
		var atSettled, purged int64
		for round := range rounds {
			for i := range flows {
				// No openid: fosite checks auth_time against the real clock, and
				// the injected one runs hours ahead.
				f := getCode(t, env, c, "offline_access")
				tok := exchange(t, env.URL, c, f)
				if tok.status != 200 {
					t.Fatalf("round %d: exchange: %s", round, tok)
				}
				if r := refresh(t, env.URL, c, str(t, tok, "refresh_token")); r.status != 200 {
					t.Fatalf("round %d: refresh: %s", round, r)
				}
				// An abandoned flow: its auth session is never decided.
				env.StartAuthorize(latchtest.NewBrowser(t), authURLScope(env.URL, c, "abandoned-"+randomish(t), "offline_access"))
				if err := env.App.Store.MarkJTI(ctx, "dpop", fmt.Sprintf("jti-%d-%d", round, i), clock.Now().Add(3*time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			before := rows(t, env.App.Store, tables)
			clock.Advance(step)
			if _, err := env.App.Purge(ctx); err != nil {
				t.Fatalf("round %d: purge: %v", round, err)
			}
			after := rows(t, env.App.Store, tables)
			purged += before - after
			if round == settled {
				atSettled = after
			}
			if round > settled && after > atSettled {
				t.Fatalf("round %d: %d rows left after purge, more than the %d at round %d: tables grow with traffic", round, after, atSettled, settled)
			}
		}
		if purged < 2*atSettled || atSettled == 0 {
			t.Fatalf("purged %d rows in all, %d kept at steady state: the load did not exercise the janitor", purged, atSettled)
		}
		t.Logf("steady state: %d rows kept, %d purged over %d rounds", atSettled, purged, rounds)
	})
}

func rows(t *testing.T, s *storage.Store, tables []string) int64 {
	t.Helper()
	var total int64
	for _, table := range tables {
		var n int64
		if err := s.DB().Table(table).Count(&n).Error; err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}
