package server

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/latchhq/latch/provider"
	"github.com/latchhq/latch/scopes"
	"github.com/latchhq/latch/storage"
)

// token is the token endpoint: authorization_code, refresh_token and
// client_credentials, all through fosite, with concurrency outcomes mapped
// to invalid_grant here.
func (s *Server) token(c echo.Context) error {
	ctx := c.Request().Context()
	if gt := c.Request().PostFormValue("grant_type"); gt != "" && !slices.Contains(grantTypes, gt) {
		// fosite reports a grant no handler knows as invalid_request;
		// RFC 6749 §5.2 names it unsupported_grant_type.
		return s.tokenError(c, nil, fosite.ErrUnsupportedGrantType.WithHintf("grant_type %q is not supported.", gt))
	}
	proof, err := s.checkProof(c, tokenPath, "")
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

// grantTypes are the grants Latch serves (password and implicit are gone in
// OAuth 2.1).
var grantTypes = []string{"authorization_code", "refresh_token", "client_credentials"}

const tokenPath = "/oauth2/token"

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

// revoke is RFC 7009 revocation. The client must authenticate (a public
// client by its client_id, the only proof it has); the revocation handler
// (provider.familyRevocation) revokes only that client's own tokens, a whole
// grant family at a time, and reports a storage failure instead of hiding it.
func (s *Server) revoke(c echo.Context) error {
	r := c.Request()
	ctx := r.Context()
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Pragma", "no-cache")
	if err := r.ParseForm(); err != nil {
		return s.revokeError(c, fosite.ErrInvalidRequest.WithHint("The request body could not be parsed."))
	}
	client, err := s.oauth.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		return s.revokeError(c, clientAuthError(err))
	}
	token := r.PostForm.Get("token")
	if token == "" {
		return s.revokeError(c, fosite.ErrInvalidRequest.WithHint("The token parameter is required."))
	}
	hint := fosite.TokenType(r.PostForm.Get("token_type_hint"))
	for _, h := range s.oauth.Config.GetRevocationHandlers(ctx) {
		err := h.RevokeToken(ctx, token, hint, client)
		switch {
		case err == nil, errors.Is(err, fosite.ErrUnknownRequest):
		case errors.Is(err, fosite.ErrUnauthorizedClient):
			// Another client's token: nothing is revoked, and the answer
			// does not tell the caller that the token exists.
			return c.NoContent(http.StatusOK)
		default:
			return s.revokeError(c, err)
		}
	}
	s.auditRevoke(ctx, r, client.GetID())
	return c.NoContent(http.StatusOK)
}

// clientAuthError makes a request without any client credentials (or with
// unreadable ones) a failed client authentication, 401 invalid_client as
// RFC 6749 §5.2 and SPEC §2 want at revocation and introspection; fosite
// calls it invalid_request.
func clientAuthError(err error) error {
	if errors.Is(err, storage.ErrUnavailable) {
		return err
	}
	if fosite.ErrorToRFC6749Error(err).ErrorField == fosite.ErrInvalidRequest.ErrorField {
		return fosite.ErrInvalidClient.WithWrap(err).WithHint("Authenticate as a client (client_secret_basic, client_secret_post, private_key_jwt, or client_id for a public client).")
	}
	return err
}

// revokeError writes a revocation failure: 503 temporarily_unavailable when
// the database failed (the token may still be live; the client must retry),
// the OAuth error otherwise.
func (s *Server) revokeError(c echo.Context, err error) error {
	if dbUnavailable(err) {
		return s.writeUnavailable(c, err)
	}
	if errors.Is(err, storage.ErrUnavailable) || errors.Is(err, fosite.ErrSerializationFailure) {
		err = fosite.ErrTemporarilyUnavailable.WithWrap(err).WithHint("The revocation could not complete; nothing was revoked. Retry shortly.")
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.CodeField >= 500 {
		s.log.Error("revocation failed", "err", err, "cause", rfc.Cause())
	}
	s.errorHeaders(c, rfc)
	return c.JSON(rfc.CodeField, map[string]string{"error": rfc.ErrorField, "error_description": rfc.GetDescription()})
}

// introspect is RFC 7662 introspection. The caller must authenticate as a
// client or with an admin API key; a token is never its own credential. A
// client learns only about tokens issued to it or naming it in aud.
func (s *Server) introspect(c echo.Context) error {
	ctx := c.Request().Context()
	c.Response().Header().Set("Cache-Control", "no-store")
	r := c.Request()
	if err := r.ParseForm(); err != nil {
		return s.introspectError(c, fosite.ErrInvalidRequest.WithHint("The request body could not be parsed."))
	}
	callerID, isAPIKey := "", false
	if r.Header.Get("X-API-Key") != "" {
		if _, err := s.apiKey(c); err != nil {
			return err
		}
		isAPIKey = true
	} else {
		client, err := s.oauth.AuthenticateClient(ctx, r, r.PostForm)
		if err == nil && client.IsPublic() {
			// A client_id proves nothing, and introspection would tell
			// anyone naming a public client about its users' tokens.
			err = fosite.ErrInvalidClient.WithHint("Public clients cannot use introspection.")
		}
		if err != nil {
			if fosite.ErrorToRFC6749Error(err).ErrorField == fosite.ErrInvalidRequest.ErrorField {
				// No client credentials at all (a bearer token does not count).
				err = fosite.ErrInvalidClient.WithHint("Authenticate as a client (client_secret_basic, client_secret_post, private_key_jwt) or with X-API-Key.")
			}
			return s.introspectError(c, err)
		}
		callerID = client.GetID()
	}
	token := r.PostForm.Get("token")
	if token == "" {
		return s.introspectError(c, fosite.ErrInvalidRequest.WithHint("The token parameter is required."))
	}
	sess := provider.NewSession()
	use, ar, err := s.oauth.IntrospectToken(ctx, token, fosite.TokenType(r.PostForm.Get("token_type_hint")), sess)
	if dbUnavailable(err) {
		return s.writeUnavailable(c, err)
	}
	if err != nil {
		return c.JSON(http.StatusOK, map[string]any{"active": false})
	}
	if !isAPIKey && ar.GetClient().GetID() != callerID && !slices.Contains(provider.TokenAudience(ar.GetGrantedAudience(), sess.TokenResources, nil), callerID) {
		return c.JSON(http.StatusOK, map[string]any{"active": false})
	}
	out := make(map[string]any, len(sess.ExtraATClaims)+10)
	// The host app's access-token claims, under every name Latch sets.
	maps.Copy(out, sess.ExtraATClaims)
	maps.Copy(out, map[string]any{
		"active":     true,
		"client_id":  ar.GetClient().GetID(),
		"scope":      strings.Join(ar.GetGrantedScopes(), " "),
		"sub":        sess.GetSubject(),
		"iss":        s.opt.Issuer,
		"iat":        ar.GetRequestedAt().Unix(),
		"token_type": "Bearer",
	})
	if use == fosite.RefreshToken {
		out["token_use"] = "refresh_token"
		delete(out, "token_type")
	} else {
		out["token_use"] = "access_token"
	}
	if exp := sess.GetExpiresAt(use); !exp.IsZero() {
		out["exp"] = exp.Unix()
	}
	aud := provider.TokenAudience(ar.GetGrantedAudience(), sess.TokenResources, sess.Audience)
	if len(aud) > 0 {
		out["aud"] = aud
	}
	if sess.JKT != "" {
		out["token_type"] = "DPoP"
		out["cnf"] = map[string]string{"jkt": sess.JKT}
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) introspectError(c echo.Context, err error) error {
	if dbUnavailable(err) {
		return s.writeUnavailable(c, err)
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	s.errorHeaders(c, rfc)
	return c.JSON(rfc.CodeField, map[string]string{"error": rfc.ErrorField, "error_description": rfc.GetDescription()})
}

// userinfo returns the claims the host app gave at approval, filtered by the
// granted scopes. The access token comes only from the Authorization header,
// as a Bearer token or, when DPoP-bound, with the DPoP scheme and a proof.
func (s *Server) userinfo(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	origin := c.Request().Header.Get("Origin")
	if origin != "" {
		// Until the token names its client, a registered origin may read
		// the answer (a 401 tells a page to refresh); see cors.go.
		c.Response().Header().Add("Vary", "Origin")
		if s.originRegistered(c, origin) {
			allowOrigin(c, origin)
		}
	}
	ar, sess, ok := s.resourceAuth(c, "/userinfo")
	if !ok {
		return nil
	}
	if origin != "" && !s.clientAllows(c, ar.GetClient().GetID(), origin) {
		c.Response().Header().Del("Access-Control-Allow-Origin")
		c.Response().Header().Del("Access-Control-Expose-Headers")
	}
	if !ar.GetGrantedScopes().Has("openid") {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="latch", error="insufficient_scope", scope="openid"`)
		return c.JSON(http.StatusForbidden, map[string]string{"error": "insufficient_scope", "error_description": "The access token was not granted the openid scope."})
	}
	claims := scopes.Claims(ar.GetGrantedScopes(), sess.UserClaims)
	maps.Copy(claims, sess.ExtraIDClaims)
	claims["sub"] = sess.GetSubject()
	return c.JSON(http.StatusOK, claims)
}
