package server

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/cimd"
)

// checkDocumentClient answers, before fosite looks at the request, for a
// client identified by a metadata document (SPEC §6): a document that
// cannot be fetched or is refused, or a redirect URI it does not list, is
// a 400 shown to the browser, never a redirect (nothing about the client
// can be trusted). It returns false when it has answered. Other clients
// are left to fosite, without a lookup here.
func (s *Server) checkDocumentClient(c echo.Context, clientID, redirectURI string) (bool, error) {
	if !strings.Contains(clientID, "://") {
		return true, nil
	}
	cl, err := s.store.Client(c.Request().Context(), clientID)
	var refused *cimd.Error
	switch {
	case errors.As(err, &refused):
		return false, documentRefused(c, refused.Reason)
	case err != nil:
		// Not a document id after all (or CIMD is off): fosite answers.
		return true, nil
	case !cl.Document:
		return true, nil
	}
	// Exactly, or by the loopback rule (any port, localhost included).
	if redirectURI != "" && !slices.Contains(cl.RedirectURIs, redirectURI) && !cl.MatchesLoopback(redirectURI) {
		return false, documentRefused(c, "redirect_uri is not one of the redirect_uris of the client's metadata document")
	}
	return true, nil
}

func documentRefused(c echo.Context, desc string) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusBadRequest, map[string]string{"error": "invalid_client", "error_description": desc})
}
