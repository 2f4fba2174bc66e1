package server

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/latchhq/latch/storage"
)

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
	rfc := s.logFailure("revocation failed", err)
	s.errorHeaders(c, rfc)
	return c.JSON(rfc.CodeField, map[string]string{"error": rfc.ErrorField, "error_description": rfc.GetDescription()})
}
