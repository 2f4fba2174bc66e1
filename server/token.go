package server

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/latchhq/latch/endpoint"
	"github.com/latchhq/latch/provider"
	"github.com/latchhq/latch/storage"
)

// token is the token endpoint: authorization_code, refresh_token and
// client_credentials, all through fosite. Every failure goes through
// tokenFailed; a grant's success event is written in the grant's own
// transaction (storage.PendingAudit).
func (s *Server) token(c echo.Context) error {
	ctx := c.Request().Context()
	if gt := c.Request().PostFormValue("grant_type"); gt != "" && !slices.Contains(provider.GrantTypes, gt) {
		// fosite reports a grant no handler knows as invalid_request;
		// RFC 6749 §5.2 names it unsupported_grant_type.
		return s.tokenFailed(c, nil, fosite.ErrUnsupportedGrantType.WithHintf("grant_type %q is not supported.", gt))
	}
	proof, err := s.checkProof(c, endpoint.Token, "")
	if err != nil {
		return s.tokenFailed(c, nil, dpopOAuthError(err))
	}
	var reuse *storage.RefreshReuse
	if c.Request().PostFormValue("grant_type") == provider.GrantRefreshToken {
		if d := s.reuseInterval(c); d > 0 {
			reuse = &storage.RefreshReuse{Interval: d}
			ctx = storage.WithRefreshReuse(ctx, reuse)
		}
	}
	sess := provider.NewSession()
	reqCtx, spent := storage.WithSpentNote(ctx)
	ar, err := s.oauth.NewAccessRequest(reqCtx, c.Request(), sess)
	if err != nil {
		if reuse != nil && errors.Is(err, storage.ErrRefreshRetry) && s.replayRefresh(c, ar, proof) {
			// A spent token within its reuse interval, presented again by
			// the client and key it was rotated for: the same answer again.
			s.audit.Record(ctx, grantEvent(c.Request(), ar))
			return nil
		}
		return s.tokenFailed(c, ar, markReplay(spent, err))
	}
	if ar.GetGrantTypes().ExactOne(provider.GrantClientCredentials) {
		if err := s.grantClientCredentials(ar, sess); err != nil {
			return s.tokenFailed(c, ar, err)
		}
	}
	if ar.GetGrantTypes().ExactOne(provider.GrantRefreshToken) {
		if ctx, err = narrowRefresh(ctx, c.Request(), ar); err != nil {
			return s.tokenFailed(c, ar, err)
		}
	}
	if err := s.grantResources(ar); err != nil {
		return s.tokenFailed(c, ar, err)
	}
	if err := bindToken(ar, proof); err != nil {
		return s.tokenFailed(c, ar, err)
	}
	if reuse != nil {
		reuse.ClientID, reuse.JKT = ar.GetClient().GetID(), boundJKT(ar)
	}
	// Attached only now, so that fosite's own transactions in
	// NewAccessRequest (reuse revocation) can never write a success event.
	grantCtx, pending := s.audit.Pending(ctx, grantEvent(c.Request(), ar), func(e *storage.AuditEvent) {
		// A code exchange grants the code's scopes while issuing tokens.
		e.Details["scopes"] = []string(ar.GetGrantedScopes())
	})
	resp, err := s.oauth.NewAccessResponse(s.withIDTokenAlg(grantCtx, ar.GetClient()), ar)
	if err != nil {
		if reuse != nil && lostRotation(err) && s.replayRefresh(c, ar, proof) {
			// Two presentations raced: the loser gets the winner's answer.
			return nil
		}
		return s.tokenFailed(c, ar, err)
	}
	s.audit.RecordPending(ctx, pending)
	if sc, ok := ar.GetClient().(*storage.Client); ok && sc.Dynamic && !sc.ObtainedToken {
		// A dynamically registered client in use is not idle: the janitor
		// deletes only those that never obtained a token.
		if err := s.store.MarkClientObtainedToken(ctx, sc.ID); err != nil {
			s.log.Warn("mark dynamic client as used", "client_id", sc.ID, "err", err)
		}
	}
	if proof != nil {
		resp.SetTokenType("DPoP")
		s.setNonce(c)
	}
	if reuse != nil && reuse.Successor != "" {
		s.sealRefresh(ctx, reuse, resp)
	}
	s.oauth.WriteAccessResponse(ctx, c.Response(), ar, resp)
	return nil
}

// grantClientCredentials grants the requested scopes (fosite has already
// checked them against the client's) and makes the client the subject, as
// RFC 9068 §2.2 asks for tokens with no user.
func (s *Server) grantClientCredentials(ar fosite.AccessRequester, sess *provider.Session) error {
	if unknown := s.scopes.Unknown(ar.GetRequestedScopes()); len(unknown) > 0 {
		return fosite.ErrInvalidScope.WithHintf("Unknown scope(s): %s.", strings.Join(unknown, " "))
	}
	for _, sc := range ar.GetRequestedScopes() {
		if sc == "openid" || sc == "offline_access" {
			return fosite.ErrInvalidScope.WithHintf("Scope %q needs a user; client_credentials has none.", sc)
		}
		ar.GrantScope(sc)
	}
	for _, aud := range ar.GetRequestedAudience() {
		ar.GrantAudience(aud)
	}
	id := ar.GetClient().GetID()
	sess.Subject, sess.ClientID = id, id
	sess.Audience = []string{s.opt.Issuer}
	return nil
}

// narrowRefresh applies a refresh request's scope parameter (RFC 6749 §6,
// SPEC §2), which fosite ignores: a scope the grant does not hold is
// invalid_scope; a subset becomes the new access token's scope (and so its
// introspection and userinfo), while the new refresh token keeps the
// grant's scope through the returned context.
func narrowRefresh(ctx context.Context, r *http.Request, ar fosite.AccessRequester) (context.Context, error) {
	asked := strings.Fields(r.PostForm.Get("scope"))
	req, ok := ar.(*fosite.AccessRequest)
	if len(asked) == 0 || !ok {
		return ctx, nil
	}
	grant := ar.GetGrantedScopes()
	narrowed := fosite.Arguments{}
	for _, sc := range asked {
		if !grant.Has(sc) {
			return ctx, fosite.ErrInvalidScope.WithHintf("The grant does not hold scope %q; a refresh may only narrow it.", sc)
		}
		if !narrowed.Has(sc) {
			narrowed = append(narrowed, sc)
		}
	}
	ctx = storage.WithGrantScopes(ctx, slices.Clone(grant))
	req.GrantedScope = narrowed
	return ctx, nil
}

// codeReplay is fosite's answer to an authorization code presented after
// it was spent, marked as the replay it is: fosite's own error wraps
// nothing that says so (see storage.SpentNote).
type codeReplay struct{ error }

func (e codeReplay) Unwrap() error { return e.error }

// markReplay marks err as a code replay when the store saw a spent code
// while fosite handled the request.
func markReplay(spent *storage.SpentNote, err error) error {
	if err != nil && spent.Seen() {
		return codeReplay{err}
	}
	return err
}

// tokenFailure is what a failed token request means: the error the client
// is told (RFC 6749 §5.2), whether a spent code or refresh token came back
// (audited as code.replayed or token.replayed), and whether the grant family
// must still be revoked here.
type tokenFailure struct {
	answer error
	replay bool
	revoke bool
}

// classifyTokenError decides, from typed signals only, what a token
// endpoint error means for a request of grant type grant (empty when the
// request was not parsed).
//
// A lost race revokes the family: when concurrent redemptions of one code
// or refresh token meet at the store's conditional spend, exactly one wins
// and every loser is a replay, treated like a sequential one (RFC 6819
// §5.2.2.3: the server cannot tell the attacker from the client, so the
// whole grant goes).
func classifyTokenError(grant string, err error) tokenFailure {
	const (
		codeGrant    = provider.GrantAuthorizationCode
		refreshGrant = provider.GrantRefreshToken
	)
	switch {
	case errors.Is(err, storage.ErrUnavailable):
		return tokenFailure{answer: fosite.ErrTemporarilyUnavailable.WithWrap(err).WithHint("The database is unreachable; retry shortly.")}
	case errors.As(err, new(codeReplay)):
		// Sequential code replay: fosite has revoked what the code
		// produced and answers invalid_grant itself.
		return tokenFailure{answer: err, replay: true}
	case errors.Is(err, storage.ErrRefreshRetry):
		// A spent token within its reuse interval that could not be
		// answered from its rotation (another client or key, or no stored
		// response): a reuse, which fosite did not see as one.
		return tokenFailure{answer: fosite.ErrInvalidGrant.WithWrap(err).WithHint("The refresh token was already used."), replay: true, revoke: true}
	case errors.Is(err, fosite.ErrInvalidatedAuthorizeCode):
		// Lost race on a code: fosite reports the store's failed spend as
		// server_error.
		return tokenFailure{answer: fosite.ErrInvalidGrant.WithWrap(err).WithHint("The authorization code has already been used."), replay: true, revoke: true}
	case errors.Is(err, fosite.ErrInactiveToken) && grant == refreshGrant:
		if errors.Is(err, fosite.ErrInvalidGrant) {
			// Sequential reuse: fosite found the token spent when it read
			// it, revoked the family and answers invalid_grant.
			return tokenFailure{answer: err, replay: true}
		}
		// Lost race on a refresh token: fosite reports the store's failed
		// spend as invalid_request.
		return tokenFailure{answer: fosite.ErrInvalidGrant.WithWrap(err).WithHint("The refresh token has already been used."), replay: true, revoke: true}
	case errors.Is(err, fosite.ErrSerializationFailure) && (grant == refreshGrant || grant == codeGrant):
		// The database aborted this request in favour of a concurrent use of
		// the same grant (e.g. a deadlock between a rotation and a reuse
		// revocation): the grant was spent elsewhere, and that request
		// decides what happens to the family.
		return tokenFailure{answer: fosite.ErrInvalidGrant.WithWrap(err).WithHint("The grant was used concurrently by another request.")}
	}
	return tokenFailure{answer: err}
}

// tokenFailed answers a failed token request: revoke the family if the
// failure calls for it, audit a replay, then write the error (a failed
// client authentication also carries WWW-Authenticate, RFC 6749 §5.2).
func (s *Server) tokenFailed(c echo.Context, ar fosite.AccessRequester, err error) error {
	ctx := c.Request().Context()
	f := classifyTokenError(grantOf(ar), err)
	if f.revoke {
		s.revokeFamily(ctx, ar, err)
	}
	if f.replay {
		s.audit.Record(ctx, replayEvent(c.Request(), ar))
	}
	rfc := s.logFailure("token request failed", f.answer)
	s.errorHeaders(c, rfc)
	s.oauth.WriteAccessError(ctx, c.Response(), ar, f.answer)
	return nil
}

// grantOf is the grant type of a parsed token request.
func grantOf(ar fosite.AccessRequester) string {
	if ar == nil || len(ar.GetGrantTypes()) != 1 {
		return ""
	}
	return ar.GetGrantTypes()[0]
}

// revokeFamily revokes the grant family of a spent code or refresh token
// presented again. After a lost race fosite has loaded the family into ar;
// a retry refused within the reuse interval failed before that, so its
// family is the one its rotation was recorded under.
func (s *Server) revokeFamily(ctx context.Context, ar fosite.AccessRequester, err error) {
	if ar == nil {
		return
	}
	id := ar.GetID()
	if errors.Is(err, storage.ErrRefreshRetry) {
		row, rErr := s.store.RefreshReplay(ctx, refreshSignature(ar.GetRequestForm().Get("refresh_token")))
		if rErr != nil {
			return
		}
		id = row.RequestID
	}
	if id == "" {
		return
	}
	if rErr := s.store.RevokeGrant(context.WithoutCancel(ctx), id); rErr != nil {
		s.log.Error("revoke replayed grant", "err", rErr)
	}
}

// logFailure logs an OAuth error the server itself caused (5xx) with its
// cause and debug text, which the client is never shown, and returns the
// error as fosite will write it.
func (s *Server) logFailure(msg string, err error) *fosite.RFC6749Error {
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.CodeField >= 500 {
		s.log.Error(msg, "err", err, "cause", rfc.Cause(), "debug", rfc.Debug())
	}
	return rfc
}
