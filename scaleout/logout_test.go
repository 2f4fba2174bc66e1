package scaleout_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
)

// TestLogoutTokensDeliveredOnceByTwoInstances: two instances share one
// database and both run deliveries at the same time, several workers each,
// against one receiver. Every logout token queued by the sessions' end is
// delivered exactly once, and the queue ends empty.
func TestLogoutTokensDeliveredOnceByTwoInstances(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(*testing.T) string) {
		d := dsn(t)
		if d == "" {
			d = "sqlite://" + t.TempDir() + "/latch.db"
		}
		loopback := func(c *config.Config) { c.Outbound.AllowLoopback = true }
		a := latchtest.Start(t, latchtest.Options{DSN: d, Configure: loopback})
		b := latchtest.Start(t, latchtest.Options{DSN: d, Configure: func(c *config.Config) { loopback(c); c.Issuer = a.URL }})

		var (
			mu   sync.Mutex
			jtis = map[string]int{}
		)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		rcv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, err := josejwt.ParseSigned(r.PostFormValue("logout_token"), []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
			var claims josejwt.Claims
			if err != nil || tok.UnsafeClaimsWithoutVerification(&claims) != nil || claims.ID == "" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			mu.Lock()
			jtis[claims.ID]++
			mu.Unlock()
		})}
		go rcv.Serve(ln)
		t.Cleanup(func() { rcv.Close() })

		c := a.RegisterClient(map[string]any{"client_name": "RP", "redirect_uris": []string{"https://client.example/cb"},
			"grant_types": []string{"authorization_code", "refresh_token"}, "backchannel_logout_uri": "http://" + ln.Addr().String() + "/bc"})
		const users = 12
		for i := range users {
			env := a
			if i%2 == 1 {
				env = b // sessions started on either instance
			}
			env.Authorize(latchtest.NewBrowser(t), authURL(env.URL, c, strings.Repeat("v", 43)), map[string]any{"user": fmt.Sprintf("user-%d", i)})
			env.Authorize(latchtest.NewBrowser(t), authURL(env.URL, c, strings.Repeat("w", 43)), map[string]any{"user": fmt.Sprintf("user-%d", i)})
		}
		for i := range users {
			env := []*latchtest.Env{a, b}[i%2]
			if status, _ := env.API("DELETE", fmt.Sprintf("/api/users/user-%d/sessions", i), nil); status != http.StatusNoContent {
				t.Fatalf("end sessions of user-%d: %d", i, status)
			}
		}
		ctx := context.Background()
		var wg sync.WaitGroup
		for w := range 6 {
			env := []*latchtest.Env{a, b}[w%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := env.App.Logout().DeliverDue(ctx); err != nil {
					t.Errorf("deliver: %v", err)
				}
			}()
		}
		wg.Wait()
		if len(jtis) != 2*users {
			t.Fatalf("%d distinct logout tokens delivered, want %d (one per ended session)", len(jtis), 2*users)
		}
		for jti, n := range jtis {
			if n != 1 {
				t.Errorf("logout token %s delivered %d times", jti, n)
			}
		}
		if pending, _ := a.App.Store.PendingLogoutDeliveries(ctx); len(pending) != 0 {
			t.Fatalf("%d deliveries left queued", len(pending))
		}
	})
}
