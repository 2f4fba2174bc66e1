package conformance

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchhq/latch/storage"
)

func testCodes(t *testing.T, f *fixture) {
	ctx := f.ctx
	_, err := f.s.GetAuthorizeCodeSession(ctx, "nope", newSession())
	wantErr(t, "unknown code", err, fosite.ErrNotFound)

	must(t, f.s.CreateAuthorizeCodeSession(ctx, "code-sig", f.request("req-1")))
	sess := newSession()
	got, err := f.s.GetAuthorizeCodeSession(ctx, "code-sig", sess)
	must(t, err)
	if got.GetID() != "req-1" || got.GetClient().GetID() != f.client.ID {
		t.Fatalf("request id/client: %q %q", got.GetID(), got.GetClient().GetID())
	}
	if !slices.Equal(got.GetGrantedScopes(), fosite.Arguments{"openid", "offline_access"}) {
		t.Fatalf("granted scopes %v", got.GetGrantedScopes())
	}
	if sess.GetSubject() != "user-1" || sess.Claims.Nonce != "n-1" {
		t.Fatalf("session not rebuilt into the caller's type: %+v", sess)
	}
	if !got.GetRequestedAt().Equal(f.clock.Now()) {
		t.Fatalf("requested_at %v, want %v", got.GetRequestedAt(), f.clock.Now())
	}
	form := got.GetRequestForm()
	if form.Get("redirect_uri") == "" || form.Has("client_secret") || form.Has("code_verifier") {
		t.Fatalf("stored form %v: want redirect_uri kept, secrets dropped", form)
	}
	var data string
	must(t, f.s.DB().Table("oauth2_tokens").Select("data").Where("signature = ?", "code-sig").Scan(&data).Error)
	if strings.Contains(data, "must-not-be-stored") {
		t.Fatalf("a secret form value reached the database: %s", data)
	}

	must(t, f.s.InvalidateAuthorizeCodeSession(ctx, "code-sig"))
	// The spent code still yields its request, so fosite can revoke what it produced.
	got, err = f.s.GetAuthorizeCodeSession(ctx, "code-sig", newSession())
	wantErr(t, "spent code", err, fosite.ErrInvalidatedAuthorizeCode)
	if got == nil || got.GetID() != "req-1" {
		t.Fatalf("spent code must return its request, got %v", got)
	}
	wantErr(t, "second invalidate", f.s.InvalidateAuthorizeCodeSession(ctx, "code-sig"), fosite.ErrInvalidatedAuthorizeCode)
	wantErr(t, "duplicate code", f.s.CreateAuthorizeCodeSession(ctx, "code-sig", f.request("req-2")), fosite.ErrSerializationFailure)
}

func testAccess(t *testing.T, f *fixture) {
	ctx := f.ctx
	_, err := f.s.GetAccessTokenSession(ctx, "nope", newSession())
	wantErr(t, "unknown access token", err, fosite.ErrNotFound)
	must(t, f.s.CreateAccessTokenSession(ctx, "at-1", f.request("req-1")))
	must(t, f.s.CreateAccessTokenSession(ctx, "at-2", f.request("req-1")))
	must(t, f.s.CreateAccessTokenSession(ctx, "at-3", f.request("req-other")))
	_, err = f.s.GetAccessTokenSession(ctx, "at-1", newSession())
	must(t, err)

	must(t, f.s.DeleteAccessTokenSession(ctx, "at-1"))
	_, err = f.s.GetAccessTokenSession(ctx, "at-1", newSession())
	wantErr(t, "deleted access token", err, fosite.ErrNotFound)

	must(t, f.s.RevokeAccessToken(ctx, "req-1"))
	got, err := f.s.GetAccessTokenSession(ctx, "at-2", newSession())
	wantErr(t, "revoked access token", err, fosite.ErrInactiveToken)
	if got == nil || got.GetID() != "req-1" {
		t.Fatalf("revoked token must still return its request")
	}
	_, err = f.s.GetAccessTokenSession(ctx, "at-3", newSession())
	must(t, err) // another family is untouched
}

func testRefresh(t *testing.T, f *fixture) {
	ctx := f.ctx
	_, err := f.s.GetRefreshTokenSession(ctx, "nope", newSession())
	wantErr(t, "unknown refresh token", err, fosite.ErrNotFound)
	// Rotation is one conditional spend with no read first: a token that is
	// not active, unknown or spent, cannot be spent (fosite always reads
	// the token before rotating, so unknown never reaches here in practice).
	wantErr(t, "rotate unknown", f.s.RotateRefreshToken(ctx, "req-1", "nope"), fosite.ErrInactiveToken)

	must(t, f.s.CreateAccessTokenSession(ctx, "at-1", f.request("req-1")))
	must(t, f.s.CreateRefreshTokenSession(ctx, "rt-1", "at-1", f.request("req-1")))
	_, err = f.s.GetRefreshTokenSession(ctx, "rt-1", newSession())
	must(t, err)

	must(t, f.s.RotateRefreshToken(ctx, "req-1", "rt-1"))
	got, err := f.s.GetRefreshTokenSession(ctx, "rt-1", newSession())
	wantErr(t, "spent refresh token", err, fosite.ErrInactiveToken)
	if got == nil || got.GetID() != "req-1" {
		t.Fatal("spent refresh token must return its request, or reuse detection never fires")
	}
	_, err = f.s.GetAccessTokenSession(ctx, "at-1", newSession())
	wantErr(t, "access token issued with the rotated refresh token", err, fosite.ErrInactiveToken)
	wantErr(t, "second rotation", f.s.RotateRefreshToken(ctx, "req-1", "rt-1"), fosite.ErrInactiveToken)

	// Delete keeps the row (inactive) so a later replay is still recognised.
	must(t, f.s.CreateRefreshTokenSession(ctx, "rt-2", "", f.request("req-1")))
	must(t, f.s.DeleteRefreshTokenSession(ctx, "rt-2"))
	_, err = f.s.GetRefreshTokenSession(ctx, "rt-2", newSession())
	wantErr(t, "deleted refresh token", err, fosite.ErrInactiveToken)

	must(t, f.s.CreateRefreshTokenSession(ctx, "rt-3", "", f.request("req-1")))
	must(t, f.s.CreateRefreshTokenSession(ctx, "rt-4", "", f.request("req-other")))
	must(t, f.s.RevokeRefreshToken(ctx, "req-1"))
	_, err = f.s.GetRefreshTokenSession(ctx, "rt-3", newSession())
	wantErr(t, "revoked family", err, fosite.ErrInactiveToken)
	_, err = f.s.GetRefreshTokenSession(ctx, "rt-4", newSession())
	must(t, err)
}

func testRevokeGrant(t *testing.T, f *fixture) {
	ctx := f.ctx
	must(t, f.s.CreateAccessTokenSession(ctx, "at-1", f.request("req-1")))
	must(t, f.s.CreateRefreshTokenSession(ctx, "rt-1", "at-1", f.request("req-1")))
	must(t, f.s.CreateAccessTokenSession(ctx, "at-2", f.request("req-2")))
	must(t, f.s.RevokeGrant(ctx, "req-1"))
	_, err := f.s.GetAccessTokenSession(ctx, "at-1", newSession())
	wantErr(t, "access after RevokeGrant", err, fosite.ErrInactiveToken)
	_, err = f.s.GetRefreshTokenSession(ctx, "rt-1", newSession())
	wantErr(t, "refresh after RevokeGrant", err, fosite.ErrInactiveToken)
	_, err = f.s.GetAccessTokenSession(ctx, "at-2", newSession())
	must(t, err)

	must(t, f.s.RevokeUserClientTokens(ctx, "user-1", f.client.ID))
	_, err = f.s.GetAccessTokenSession(ctx, "at-2", newSession())
	wantErr(t, "access after RevokeUserClientTokens", err, fosite.ErrInactiveToken)
}

func testOIDC(t *testing.T, f *fixture) {
	ctx := f.ctx
	const code = "raw-authorization-code.with-signature"
	_, err := f.s.GetOpenIDConnectSession(ctx, code, f.request("x"))
	wantErr(t, "unknown OIDC session", err, openid.ErrNoSessionFound)

	must(t, f.s.CreateOpenIDConnectSession(ctx, code, f.request("req-1")))
	if n := f.count("oauth2_tokens", "signature = ? OR data LIKE ?", code, "%"+code+"%"); n != 0 {
		t.Fatal("the raw authorization code reached the database; OIDC sessions must be keyed by its hash")
	}
	got, err := f.s.GetOpenIDConnectSession(ctx, code, &fosite.Request{Session: newSession()})
	must(t, err)
	if got.GetID() != "req-1" || got.GetSession().(*openid.DefaultSession).Claims.Nonce != "n-1" {
		t.Fatalf("OIDC session not rebuilt: %+v", got)
	}
	// Delete keeps the row: it is reachable only through its code, which is
	// spent by then; the janitor removes it with the code (see Janitor).
	must(t, f.s.DeleteOpenIDConnectSession(ctx, code))
	_, err = f.s.GetOpenIDConnectSession(ctx, code, &fosite.Request{Session: newSession()})
	must(t, err)
	_, err = f.s.GetOpenIDConnectSession(ctx, "another-code", &fosite.Request{Session: newSession()})
	wantErr(t, "unknown OIDC session", err, openid.ErrNoSessionFound)
}

func testPKCE(t *testing.T, f *fixture) {
	ctx := f.ctx
	_, err := f.s.GetPKCERequestSession(ctx, "nope", newSession())
	wantErr(t, "unknown PKCE session", err, fosite.ErrNotFound)
	r := f.request("req-1")
	r.Form.Set("code_challenge", "challenge-value")
	r.Form.Set("code_challenge_method", "S256")
	must(t, f.s.CreatePKCERequestSession(ctx, "code-sig", r))
	got, err := f.s.GetPKCERequestSession(ctx, "code-sig", newSession())
	must(t, err)
	if got.GetRequestForm().Get("code_challenge") != "challenge-value" || got.GetRequestForm().Get("code_challenge_method") != "S256" {
		t.Fatalf("PKCE challenge not stored: %v", got.GetRequestForm())
	}
	// Deleting is deferred to the janitor so concurrent redemptions all reach
	// the code's conditional spend (see storage.DeletePKCERequestSession).
	must(t, f.s.DeletePKCERequestSession(ctx, "code-sig"))
}

func testTx(t *testing.T, f *fixture) {
	ctx := f.ctx
	txCtx, err := f.s.BeginTX(ctx)
	must(t, err)
	if _, err := f.s.BeginTX(txCtx); err == nil {
		t.Fatal("nested BeginTX must fail, not silently open a second transaction")
	}
	must(t, f.s.CreateAccessTokenSession(txCtx, "at-rolled-back", f.request("req-1")))
	must(t, f.s.Rollback(txCtx))
	_, err = f.s.GetAccessTokenSession(ctx, "at-rolled-back", newSession())
	wantErr(t, "rolled back insert", err, fosite.ErrNotFound)

	txCtx, err = f.s.BeginTX(ctx)
	must(t, err)
	must(t, f.s.CreateAccessTokenSession(txCtx, "at-committed", f.request("req-1")))
	must(t, f.s.Commit(txCtx))
	_, err = f.s.GetAccessTokenSession(ctx, "at-committed", newSession())
	must(t, err)

	boom := errors.New("boom")
	err = f.s.InTx(ctx, func(ctx context.Context) error {
		must(t, f.s.CreateAccessTokenSession(ctx, "at-intx", f.request("req-1")))
		return f.s.InTx(ctx, func(context.Context) error { return boom }) // joins, then fails
	})
	wantErr(t, "InTx", err, boom)
	_, err = f.s.GetAccessTokenSession(ctx, "at-intx", newSession())
	wantErr(t, "InTx rolled back", err, fosite.ErrNotFound)
}

// testRevokeUnremembered: DeleteAuthorization revokes a user's codes and
// tokens for a client whether or not the consent was remembered, and is
// ErrNotFound only when there was nothing to revoke. RevokeGrant takes a
// family's unredeemed code along.
func testRevokeUnremembered(t *testing.T, f *fixture) {
	ctx := f.ctx
	must(t, f.s.CreateAuthorizeCodeSession(ctx, "code-1", f.request("req-1")))
	must(t, f.s.CreateAccessTokenSession(ctx, "at-1", f.request("req-1")))
	must(t, f.s.CreateRefreshTokenSession(ctx, "rt-1", "at-1", f.request("req-1")))
	must(t, f.s.CreateAuthorizeCodeSession(ctx, "code-2", f.request("req-2")))

	must(t, f.s.DeleteAuthorization(ctx, "user-1", f.client.ID))
	_, err := f.s.GetAccessTokenSession(ctx, "at-1", newSession())
	wantErr(t, "access token after DeleteAuthorization", err, fosite.ErrInactiveToken)
	_, err = f.s.GetRefreshTokenSession(ctx, "rt-1", newSession())
	wantErr(t, "refresh token after DeleteAuthorization", err, fosite.ErrInactiveToken)
	_, err = f.s.GetAuthorizeCodeSession(ctx, "code-2", newSession())
	wantErr(t, "unredeemed code after DeleteAuthorization", err, fosite.ErrInvalidatedAuthorizeCode)
	wantErr(t, "nothing left to revoke", f.s.DeleteAuthorization(ctx, "user-1", f.client.ID), fosite.ErrNotFound)
	wantErr(t, "unknown client", f.s.DeleteAuthorization(ctx, "user-1", "no-such-client"), fosite.ErrNotFound)
	if n := f.count("grants", ""); n != 0 {
		t.Fatalf("%d grant rows left after the grant was revoked and a revocation found nothing", n)
	}

	must(t, f.s.CreateAuthorizeCodeSession(ctx, "code-3", f.request("req-3")))
	must(t, f.s.RevokeGrant(ctx, "req-3"))
	_, err = f.s.GetAuthorizeCodeSession(ctx, "code-3", newSession())
	wantErr(t, "code of a revoked family", err, fosite.ErrInvalidatedAuthorizeCode)
}

// testReplaySkew: an instance whose clock runs ahead must not forget a jti
// that slower instances still accept, neither by purging nor by reusing it.
func testReplaySkew(t *testing.T, f *fixture) {
	ctx := f.ctx
	exp := f.clock.Now().Add(time.Minute)
	must(t, f.s.MarkJTI(ctx, "dpop", "jti-skew", exp))
	const ahead = 4 * time.Minute // 3m past exp on the fast clock
	f.clock.Advance(ahead)
	res, err := f.s.Purge(ctx, storage.JanitorOptions{})
	must(t, err)
	if res["seen_jtis"] != 0 {
		t.Fatalf("a fast clock purged a live replay-cache row: %v", res)
	}
	wantErr(t, "reuse on the fast instance", f.s.MarkJTI(ctx, "dpop", "jti-skew", f.clock.Now().Add(time.Minute)), storage.ErrReplay)
	f.clock.Advance(-ahead)
	wantErr(t, "replay on an instance with the right time", f.s.MarkJTI(ctx, "dpop", "jti-skew", exp), storage.ErrReplay)
	f.clock.Advance(ahead + storage.ReplayClockSkew)
	res, err = f.s.Purge(ctx, storage.JanitorOptions{})
	must(t, err)
	if res["seen_jtis"] != 1 {
		t.Fatalf("an entry past expiry and the skew margin was kept: %v", res)
	}
}
