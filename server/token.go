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
// client_credentials, all through fosite, with concurrency outcomes mapped
// to invalid_grant here.
func (s *Server) token(c echo.Context) error {
	ctx := c.Request().Context()
	if gt := c.Request().PostFormValue("grant_type"); gt != "" && !slices.Contains(provider.GrantTypes, gt) {
		// fosite reports a grant no handler knows as invalid_request;
		// RFC 6749 §5.2 names it unsupported_grant_type.
		return s.tokenError(c, nil, fosite.ErrUnsupportedGrantType.WithHintf("grant_type %q is not supported.", gt))
	}
	proof, err := s.checkProof(c, endpoint.Token, "")
	if err != nil {
		return s.tokenError(c, nil, dpopOAuthError(err))
	}
	var reuse *storage.RefreshReuse
	if c.Request().PostFormValue("grant_type") == "refresh_token" {
		if d := s.reuseInterval(c); d > 0 {
			reuse = &storage.RefreshReuse{Interval: d}
			ctx = storage.WithRefreshReuse(ctx, reuse)
		}
	}
	sess := provider.NewSession()
	ar, err := s.oauth.NewAccessRequest(ctx, c.Request(), sess)
	if err != nil {
		if reuse != nil && errors.Is(err, storage.ErrRefreshRetry) {
			// A spent token within its reuse interval: the same answer
			// again, or, for anyone else, a reuse.
			if s.replayRefresh(c, ar, proof) {
				s.auditToken(ctx, c.Request(), ar, nil)
				return nil
			}
			err = s.unservableRetry(ctx, ar)
		}
		s.auditToken(ctx, c.Request(), ar, err)
		return s.tokenError(c, ar, err)
	}
	if ar.GetGrantTypes().ExactOne("client_credentials") {
		if err := s.grantClientCredentials(ar, sess); err != nil {
			return s.tokenError(c, ar, err)
		}
	}
	if ar.GetGrantTypes().ExactOne("refresh_token") {
		if ctx, err = narrowRefresh(ctx, c.Request(), ar); err != nil {
			return s.tokenError(c, ar, err)
		}
	}
	if err := s.grantResources(ar); err != nil {
		return s.tokenError(c, ar, err)
	}
	if err := bindToken(ar, proof); err != nil {
		return s.tokenError(c, ar, err)
	}
	if reuse != nil {
		reuse.ClientID, reuse.JKT = ar.GetClient().GetID(), boundJKT(ar)
	}
	resp, err := s.oauth.NewAccessResponse(s.withIDTokenAlg(ctx, ar.GetClient()), ar)
	if err != nil {
		if reuse != nil && lostRotation(err) && s.replayRefresh(c, ar, proof) {
			// Two presentations raced: the loser gets the winner's answer.
			return nil
		}
		err = s.raceLost(ctx, ar, err)
		s.auditToken(ctx, c.Request(), ar, err)
		return s.tokenError(c, ar, err)
	}
	s.auditToken(ctx, c.Request(), ar, nil)
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

// raceLost turns the loser of a concurrent redemption into invalid_grant.
// fosite reports a code or refresh token spent between its read and our
// conditional update as a server error; it is a replay, and our reuse
// policy revokes the grant family exactly as for a sequential replay.
func (s *Server) raceLost(ctx context.Context, ar fosite.AccessRequester, err error) error {
	var hint string
	switch {
	case errors.Is(err, fosite.ErrInvalidatedAuthorizeCode):
		hint = "The authorization code has already been used."
	case errors.Is(err, fosite.ErrInactiveToken) && ar.GetGrantTypes().ExactOne("refresh_token"):
		hint = "The refresh token has already been used."
	default:
		return err
	}
	if id := ar.GetID(); id != "" {
		if rErr := s.store.RevokeGrant(context.WithoutCancel(ctx), id); rErr != nil {
			s.log.Error("revoke replayed grant", "err", rErr)
		}
	}
	return fosite.ErrInvalidGrant.WithHint(hint)
}

// tokenError writes an OAuth error from the token endpoint; a failed client
// authentication also carries WWW-Authenticate (RFC 6749 §5.2).
func (s *Server) tokenError(c echo.Context, ar fosite.AccessRequester, err error) error {
	switch {
	case errors.Is(err, storage.ErrUnavailable):
		err = fosite.ErrTemporarilyUnavailable.WithWrap(err).WithHint("The database is unreachable; retry shortly.")
	case errors.Is(err, fosite.ErrSerializationFailure) && ar != nil &&
		(ar.GetGrantTypes().ExactOne("refresh_token") || ar.GetGrantTypes().ExactOne("authorization_code")):
		// The database aborted this request in favour of a concurrent use of
		// the same grant (e.g. a deadlock between a rotation and a reuse
		// revocation): like any lost race, the grant was spent elsewhere.
		err = fosite.ErrInvalidGrant.WithWrap(err).WithHint("The grant was used concurrently by another request.")
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.CodeField >= 500 {
		s.log.Error("token request failed", "err", err, "cause", rfc.Cause(), "debug", rfc.Debug())
	}
	s.errorHeaders(c, rfc)
	s.oauth.WriteAccessError(c.Request().Context(), c.Response(), ar, err)
	return nil
}
