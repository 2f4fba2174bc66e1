package server

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchhq/latch/migrations"
	"github.com/latchhq/latch/storage"
	"github.com/latchhq/latch/storage/pgtest"
)

// grantRig drives fosite's own code and refresh handlers against a real
// store, so the errors classified below are exactly those fosite builds.
type grantRig struct {
	t       *testing.T
	store   *storage.Store
	client  *storage.Client
	hmac    *oauth2.HMACSHAStrategy
	code    *oauth2.AuthorizeExplicitGrantHandler
	refresh *oauth2.RefreshTokenGrantHandler
}

// fixedAccess hands out one access token over and over, so the second
// grant's insert collides with the first's row: a real conflict from the
// database, which the store reports as fosite.ErrSerializationFailure.
type fixedAccess struct {
	*oauth2.HMACSHAStrategy
	token, signature string
}

func (f *fixedAccess) GenerateAccessToken(context.Context, fosite.Requester) (string, string, error) {
	return f.token, f.signature, nil
}

func newGrantRig(t *testing.T, dsn string) *grantRig {
	ctx := context.Background()
	s, err := storage.Open(dsn, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	c := &storage.Client{ID: "c1", GrantTypes: []string{"authorization_code", "refresh_token"}, Scope: "openid offline_access"}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	cfg := &fosite.Config{
		GlobalSecret: []byte(strings.Repeat("k", 32)), AccessTokenLifespan: time.Hour, RefreshTokenLifespan: time.Hour,
		AuthorizeCodeLifespan: time.Minute, ScopeStrategy: fosite.ExactScopeStrategy,
		AudienceMatchingStrategy: fosite.DefaultAudienceMatchingStrategy, RefreshTokenScopes: []string{"offline_access"},
	}
	h := compose.NewOAuth2HMACStrategy(cfg)
	return &grantRig{t: t, store: s, client: c, hmac: h,
		code:    &oauth2.AuthorizeExplicitGrantHandler{AccessTokenStrategy: h, RefreshTokenStrategy: h, AuthorizeCodeStrategy: h, CoreStorage: s, TokenRevocationStorage: s, Config: cfg},
		refresh: &oauth2.RefreshTokenGrantHandler{AccessTokenStrategy: h, RefreshTokenStrategy: h, TokenRevocationStorage: s, Config: cfg},
	}
}

// issueCode stores an authorization code as the approval step would.
func (g *grantRig) issueCode() string {
	ctx := context.Background()
	sess := openid.NewDefaultSession()
	sess.Subject = "alice"
	sess.SetExpiresAt(fosite.AuthorizeCode, time.Now().Add(time.Minute))
	req := fosite.NewRequest()
	req.Client, req.Session = g.client, sess
	req.GrantScope("offline_access")
	code, sig, err := g.hmac.GenerateAuthorizeCode(ctx, req)
	if err != nil {
		g.t.Fatal(err)
	}
	if err := g.store.CreateAuthorizeCodeSession(ctx, sig, req); err != nil {
		g.t.Fatal(err)
	}
	return code
}

type tokenHandler interface {
	HandleTokenEndpointRequest(context.Context, fosite.AccessRequester) error
	PopulateTokenEndpointResponse(context.Context, fosite.AccessRequester, fosite.AccessResponder) error
}

// pending is a token request between fosite's two steps, the way the
// endpoint runs them (NewAccessRequest, then NewAccessResponse).
type pending struct {
	ar   *fosite.AccessRequest
	h    tokenHandler
	resp *fosite.AccessResponse
}

// handle is the request step, with a spent code marked as the endpoint
// marks it.
func (g *grantRig) handle(ctx context.Context, grant, param, value string) (*pending, error) {
	ar := fosite.NewAccessRequest(openid.NewDefaultSession())
	ar.GrantTypes, ar.Client, ar.Form = fosite.Arguments{grant}, g.client, url.Values{param: {value}}
	p := &pending{ar: ar, h: g.code, resp: fosite.NewAccessResponse()}
	if grant == "refresh_token" {
		p.h = g.refresh
	}
	ctx, spent := storage.WithSpentNote(ctx)
	return p, markReplay(spent, p.h.HandleTokenEndpointRequest(ctx, ar))
}

func (p *pending) populate(ctx context.Context) error {
	return p.h.PopulateTokenEndpointResponse(ctx, p.ar, p.resp)
}

// redeem runs both steps and fails the test unless they succeed.
func (g *grantRig) redeem(ctx context.Context, grant, param, value string) *fosite.AccessResponse {
	g.t.Helper()
	p, err := g.handle(ctx, grant, param, value)
	if err == nil {
		err = p.populate(ctx)
	}
	if err != nil {
		g.t.Fatalf("%s: %v", grant, fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
	}
	return p.resp
}

// loseRace passes the request step, lets a concurrent request redeem the
// same code or token, then runs the issuing step.
func (g *grantRig) loseRace(ctx context.Context, grant, param, value string) error {
	g.t.Helper()
	loser, err := g.handle(ctx, grant, param, value)
	if err != nil {
		g.t.Fatal(err)
	}
	g.redeem(ctx, grant, param, value)
	return loser.populate(ctx)
}

// failAtPopulate passes the request step and returns the issuing step's error.
func (g *grantRig) failAtPopulate(ctx context.Context, grant, param, value string) error {
	g.t.Helper()
	p, err := g.handle(ctx, grant, param, value)
	if err != nil {
		g.t.Fatal(err)
	}
	return p.populate(ctx)
}

func (g *grantRig) refreshToken() string {
	resp := g.redeem(context.Background(), "authorization_code", "code", g.issueCode())
	return resp.GetExtra("refresh_token").(string)
}

// TestClassifyTokenError classifies the errors fosite v0.49 returns for
// each way a token request meets a spent, contended or unreachable grant.
func TestClassifyTokenError(t *testing.T) {
	for name, dsn := range map[string]func(t *testing.T) string{
		"SQLite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "latch.db") },
		"Postgres": func(t *testing.T) string { return pgtest.DSN(t) },
	} {
		t.Run(name, func(t *testing.T) { testClassifyTokenError(t, dsn(t)) })
	}
}

type tokenErrorCase struct {
	name  string
	grant string
	fail  func() error
	// what the client is told, and what the endpoint does first
	error, hint    string
	status         int
	replay, revoke bool
}

func testClassifyTokenError(t *testing.T, dsn string) {
	ctx := context.Background()
	g := newGrantRig(t, dsn)
	const (
		codeUsed    = "The authorization code has already been used."
		refreshUsed = "The refresh token has already been used."
		concurrent  = "The grant was used concurrently by another request."
	)
	cases := []tokenErrorCase{
		{name: "sequential code replay", grant: "authorization_code", fail: func() error {
			code := g.issueCode()
			g.redeem(ctx, "authorization_code", "code", code)
			_, err := g.handle(ctx, "authorization_code", "code", code)
			return err
		}, error: "invalid_grant", hint: codeUsed, status: 400, replay: true},
		{name: "sequential refresh reuse", grant: "refresh_token", fail: func() error {
			rt := g.refreshToken()
			g.redeem(ctx, "refresh_token", "refresh_token", rt)
			_, err := g.handle(ctx, "refresh_token", "refresh_token", rt)
			return err
		}, error: "invalid_grant", hint: "The refresh token was already used.", status: 400, replay: true},
		{name: "lost race on a code", grant: "authorization_code", fail: func() error {
			return g.loseRace(ctx, "authorization_code", "code", g.issueCode())
		}, error: "invalid_grant", hint: codeUsed, status: 400, replay: true, revoke: true},
		{name: "lost race on a refresh token", grant: "refresh_token", fail: func() error {
			return g.loseRace(ctx, "refresh_token", "refresh_token", g.refreshToken())
		}, error: "invalid_grant", hint: refreshUsed, status: 400, replay: true, revoke: true},
		{name: "conflict in a code exchange", grant: "authorization_code", fail: func() error {
			fixed := g.fixAccessToken()
			defer fixed()
			g.redeem(ctx, "authorization_code", "code", g.issueCode())
			return g.failAtPopulate(ctx, "authorization_code", "code", g.issueCode())
		}, error: "invalid_grant", hint: concurrent, status: 400},
		{name: "conflict in a refresh", grant: "refresh_token", fail: func() error {
			rt1, rt2 := g.refreshToken(), g.refreshToken()
			fixed := g.fixAccessToken()
			defer fixed()
			g.redeem(ctx, "refresh_token", "refresh_token", rt1)
			return g.failAtPopulate(ctx, "refresh_token", "refresh_token", rt2)
		}, error: "invalid_grant", hint: concurrent, status: 400},
		{name: "retry the reuse interval cannot serve", grant: "refresh_token", fail: func() error {
			rt := g.refreshToken()
			g.redeem(storage.WithRefreshReuse(ctx, &storage.RefreshReuse{Interval: time.Minute, ClientID: "c1"}), "refresh_token", "refresh_token", rt)
			_, err := g.handle(storage.WithRefreshReuse(ctx, &storage.RefreshReuse{Interval: time.Minute}), "refresh_token", "refresh_token", rt)
			return err
		}, error: "invalid_grant", hint: "The refresh token was already used.", status: 400, replay: true, revoke: true},
		// Not replays: a code or refresh token that never existed.
		{name: "unknown code", grant: "authorization_code", fail: func() error {
			_, err := g.handle(ctx, "authorization_code", "code", "ory_ac_nope.nope")
			return err
		}, error: "invalid_grant", status: 400},
		{name: "unknown refresh token", grant: "refresh_token", fail: func() error {
			_, err := g.handle(ctx, "refresh_token", "refresh_token", "ory_rt_nope.nope")
			return err
		}, error: "invalid_grant", hint: "The refresh token is malformed or not valid.", status: 400},
	}
	if g.store.Dialect() == migrations.Postgres {
		// Last: it cuts the store off its database for good.
		cases = append(cases, tokenErrorCase{name: "database outage", grant: "refresh_token", fail: func() error {
			rt := g.refreshToken()
			cutOff(t, dsn)
			_, err := g.handle(ctx, "refresh_token", "refresh_token", rt)
			return err
		}, error: "temporarily_unavailable", hint: "The database is unreachable; retry shortly.", status: http.StatusServiceUnavailable})
	}
	for _, c := range cases {
		err := c.fail()
		if err == nil {
			t.Fatalf("%s: fosite accepted the request", c.name)
		}
		f := classifyTokenError(c.grant, err)
		rfc := fosite.ErrorToRFC6749Error(f.answer)
		if rfc.ErrorField != c.error || rfc.CodeField != c.status || (c.hint != "" && rfc.HintField != c.hint) ||
			f.replay != c.replay || f.revoke != c.revoke {
			t.Errorf("%s: %s %d %q replay=%v revoke=%v, want %s %d %q replay=%v revoke=%v\n  fosite said: %+v",
				c.name, rfc.ErrorField, rfc.CodeField, rfc.HintField, f.replay, f.revoke,
				c.error, c.status, c.hint, c.replay, c.revoke, err)
		}
	}
}

// fixAccessToken makes every grant from now on issue the same access
// token; the returned func undoes it.
func (g *grantRig) fixAccessToken() func() {
	tok, sig, err := g.hmac.GenerateAccessToken(context.Background(), nil)
	if err != nil {
		g.t.Fatal(err)
	}
	f := &fixedAccess{HMACSHAStrategy: g.hmac, token: tok, signature: sig}
	g.code.AccessTokenStrategy, g.refresh.AccessTokenStrategy = f, f
	return func() { g.code.AccessTokenStrategy, g.refresh.AccessTokenStrategy = g.hmac, g.hmac }
}

// cutOff refuses new connections to dsn's database and ends the open ones,
// as a failover or a network cut would.
func cutOff(t *testing.T, dsn string) {
	ctx := context.Background()
	u, _ := url.Parse(dsn)
	db := strings.TrimPrefix(u.Path, "/")
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`ALTER DATABASE ` + db + ` ALLOW_CONNECTIONS false`,
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '` + db + `'`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
