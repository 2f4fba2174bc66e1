// Package conformance is the one behavioural test suite every storage
// backend must pass: the fosite storage contracts (spent codes and refresh
// tokens, revocation by request id, OIDC and PKCE sessions), Latch's own
// records, error translation, expiry under an injected clock, the janitor,
// and the races an OAuth server meets, each of which must have exactly one
// winner. Run it from a _test.go file with a function that opens a fresh,
// migrated store.
package conformance

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchhq/latch/storage"
)

// Opener opens a fresh, migrated, empty store with opts (the suite sets the
// clock through opts.Now) and closes it when t ends.
type Opener func(t *testing.T, opts storage.Options) *storage.Store

// Clock is a settable clock shared by a store and the test: the one test
// clock of the module (latchtest instances, rate limits, key rotation and
// fetch caches take it too), so expiry is tested without sleeping.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at a fixed, microsecond-aligned instant.
func NewClock() *Clock { return NewClockAt(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) }

// NewClockAt starts a clock at t.
func NewClockAt(t time.Time) *Clock { return &Clock{t: t.UTC().Truncate(time.Microsecond)} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is one store with its clock and a registered client.
type fixture struct {
	t      *testing.T
	s      *storage.Store
	clock  *Clock
	client *storage.Client
	ctx    context.Context
}

func setup(t *testing.T, open Opener) *fixture {
	t.Helper()
	clock := NewClock()
	s := open(t, storage.Options{Now: clock.Now})
	f := &fixture{t: t, s: s, clock: clock, ctx: context.Background()}
	f.client = f.newClient("client-1")
	return f
}

func (f *fixture) newClient(id string) *storage.Client {
	f.t.Helper()
	c := &storage.Client{
		ID: id, SecretHash: "hash-" + id, Name: "Client " + id,
		RedirectURIs: []string{"https://client.example/cb"},
		GrantTypes:   []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		Scope: "openid offline_access", TokenEndpointAuthMethod: "client_secret_basic", Owner: "owner-1",
	}
	if err := f.s.CreateClient(f.ctx, c); err != nil {
		f.t.Fatalf("create client %s: %v", id, err)
	}
	return c
}

// request builds a fosite request as the handlers would store it, with
// lifetimes relative to the store's clock.
func (f *fixture) request(id string) *fosite.Request {
	now := f.clock.Now()
	sess := &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{Subject: "user-1", Nonce: "n-1"},
		Headers: &jwt.Headers{},
		Subject: "user-1",
		ExpiresAt: map[fosite.TokenType]time.Time{
			fosite.AuthorizeCode: now.Add(time.Minute),
			fosite.AccessToken:   now.Add(time.Hour),
			fosite.RefreshToken:  now.Add(24 * time.Hour),
		},
	}
	r := &fosite.Request{
		ID: id, RequestedAt: now, Client: f.client,
		RequestedScope: fosite.Arguments{"openid", "offline_access"},
		GrantedScope:   fosite.Arguments{"openid", "offline_access"},
		Form: url.Values{
			"redirect_uri":  {"https://client.example/cb"},
			"client_secret": {"must-not-be-stored"},
			"code_verifier": {"must-not-be-stored"},
		},
		Session: sess,
	}
	return r
}

func newSession() *openid.DefaultSession { return openid.NewDefaultSession() }

// Run runs the whole suite against stores made by open.
func Run(t *testing.T, open Opener) {
	t.Run("Clients", func(t *testing.T) { testClients(t, setup(t, open)) })
	t.Run("AuthorizeCodes", func(t *testing.T) { testCodes(t, setup(t, open)) })
	t.Run("AccessTokens", func(t *testing.T) { testAccess(t, setup(t, open)) })
	t.Run("RefreshTokens", func(t *testing.T) { testRefresh(t, setup(t, open)) })
	t.Run("RefreshReplay", func(t *testing.T) { testRefreshReplay(t, setup(t, open)) })
	t.Run("CORSOrigins", func(t *testing.T) { testCORSOrigins(t, setup(t, open)) })
	t.Run("RevokeGrantAndUserClient", func(t *testing.T) { testRevokeGrant(t, setup(t, open)) })
	t.Run("RevokeUnrememberedGrant", func(t *testing.T) { testRevokeUnremembered(t, setup(t, open)) })
	t.Run("ReplayCacheClockSkew", func(t *testing.T) { testReplaySkew(t, setup(t, open)) })
	t.Run("OpenIDConnectSessions", func(t *testing.T) { testOIDC(t, setup(t, open)) })
	t.Run("PKCE", func(t *testing.T) { testPKCE(t, setup(t, open)) })
	t.Run("Transactions", func(t *testing.T) { testTx(t, setup(t, open)) })
	t.Run("AuthSessions", func(t *testing.T) { testAuthSessions(t, setup(t, open)) })
	t.Run("PushedRequests", func(t *testing.T) { testPAR(t, setup(t, open)) })
	t.Run("LoginSessions", func(t *testing.T) { testLoginSessions(t, setup(t, open)) })
	t.Run("Authorizations", func(t *testing.T) { testAuthorizations(t, setup(t, open)) })
	t.Run("AuthorizationsPerRedirect", func(t *testing.T) { testAuthorizationsPerRedirect(t, setup(t, open)) })
	t.Run("RegistrationTokens", func(t *testing.T) { testRegistrationTokens(t, setup(t, open)) })
	t.Run("IdleDynamicClients", func(t *testing.T) { testIdleDynamicClients(t, setup(t, open)) })
	t.Run("APIKeys", func(t *testing.T) { testAPIKeys(t, setup(t, open)) })
	t.Run("SigningKeys", func(t *testing.T) { testSigningKeys(t, setup(t, open)) })
	t.Run("ReplayCache", func(t *testing.T) { testReplay(t, setup(t, open)) })
	t.Run("AssertionJTIsPerClient", func(t *testing.T) { testAssertionJTIsPerClient(t, setup(t, open)) })
	t.Run("Timestamps", func(t *testing.T) { testTimestamps(t, setup(t, open)) })
	t.Run("Janitor", func(t *testing.T) { testJanitor(t, setup(t, open)) })
	t.Run("RateLimits", func(t *testing.T) { testRateLimits(t, setup(t, open)) })
	t.Run("EndLoginSessions", func(t *testing.T) { testEndLoginSessions(t, setup(t, open)) })
	t.Run("LogoutQueue", func(t *testing.T) { testLogoutQueue(t, setup(t, open)) })
	t.Run("UserGrants", func(t *testing.T) { testUserGrants(t, setup(t, open)) })
	t.Run("Concurrency", func(t *testing.T) {
		t.Run("SpendCodeOnce", func(t *testing.T) { testRaceCode(t, setup(t, open)) })
		t.Run("RotateRefreshOnce", func(t *testing.T) { testRaceRefresh(t, setup(t, open)) })
		t.Run("DecideAuthSessionOnce", func(t *testing.T) { testRaceDecide(t, setup(t, open)) })
		t.Run("CompleteAuthSessionOnce", func(t *testing.T) { testRaceComplete(t, setup(t, open)) })
		t.Run("MarkJTIOnce", func(t *testing.T) { testRaceJTI(t, setup(t, open)) })
		t.Run("CreateClientOnce", func(t *testing.T) { testRaceCreateClient(t, setup(t, open)) })
		t.Run("RevokeAgainstRotation", func(t *testing.T) { testRaceRevokeRotate(t, setup(t, open)) })
		t.Run("RememberAgainstRevoke", func(t *testing.T) { testRaceRememberRevoke(t, setup(t, open)) })
		t.Run("ClaimLogoutDeliveryOnce", func(t *testing.T) { testRaceClaimLogout(t, setup(t, open)) })
	})
}

// --- assertions ---

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
	// fosite's sentinel and the store's own word always come together.
	for fositeErr, own := range map[error]error{fosite.ErrNotFound: storage.ErrNotFound, fosite.ErrSerializationFailure: storage.ErrConflict} {
		if errors.Is(want, fositeErr) && !errors.Is(err, own) {
			t.Fatalf("%s: error %v is %v but not %v", what, err, fositeErr, own)
		}
	}
}

// race runs fn from n goroutines released together and returns how many
// returned nil; every error must satisfy loser.
func race(t *testing.T, n int, fn func(i int) error, loser func(error) bool) int {
	t.Helper()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		wins  atomic.Int64
		mu    sync.Mutex
		bad   []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := fn(i)
			switch {
			case err == nil:
				wins.Add(1)
			case !loser(err):
				mu.Lock()
				bad = append(bad, err)
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range bad {
		t.Errorf("unexpected error from a race loser: %v", err)
	}
	return int(wins.Load())
}

// count returns the rows of table matching where.
func (f *fixture) count(table, where string, args ...any) int64 {
	f.t.Helper()
	var n int64
	q := f.s.DB().Table(table)
	if where != "" {
		q = q.Where(where, args...)
	}
	must(f.t, q.Count(&n).Error)
	return n
}
