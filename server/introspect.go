package server

import (
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/latchhq/latch/provider"
)

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
				err = fosite.ErrInvalidClient.WithHint("Authenticate as a client (" + strings.Join(provider.IntrospectionEndpointAuthMethods, ", ") + ") or with X-API-Key.")
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
