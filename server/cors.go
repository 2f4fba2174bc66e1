package server

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

// CORS (SPEC §2). Discovery and JWKS are public documents: any origin may
// read them. Token, revocation and userinfo answer only the origins a
// client registered in allowed_cors_origins:
//
//   - A preflight names no client (the browser sends no body and no
//     credentials), so it succeeds when some client registered the origin.
//   - The request itself is answered for the client it identifies: at the
//     token and revocation endpoints the client_id of Basic authentication
//     or of the body, at userinfo the client the access token was issued
//     to. A page on an origin one client registered therefore cannot read
//     another client's responses.
//   - A userinfo request whose token does not identify a client (invalid,
//     expired) gets its 401 readable by any registered origin, so a page
//     can see it must refresh.
//
// The authorization endpoint (a top-level navigation) and /api (the host
// app's server-side API) never send CORS headers.

const (
	corsAllowHeaders  = "Authorization, Content-Type, DPoP"
	corsExposeHeaders = "WWW-Authenticate, DPoP-Nonce"
	corsMaxAge        = "600"
)

// publicCORS lets any origin read a public document.
func publicCORS(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Access-Control-Allow-Origin", "*")
		return next(c)
	}
}

// originRegistered reports whether some client registered the request's
// Origin; a database failure counts as no.
func (s *Server) originRegistered(c echo.Context, origin string) bool {
	ok, err := s.store.CORSOriginRegistered(c.Request().Context(), origin)
	if err != nil {
		s.log.Warn("CORS origin lookup failed", "err", err)
	}
	return ok && err == nil
}

// preflight answers a CORS preflight for an endpoint serving methods.
func (s *Server) preflight(methods string) echo.HandlerFunc {
	return func(c echo.Context) error {
		origin := c.Request().Header.Get("Origin")
		h := c.Response().Header()
		h.Add("Vary", "Origin")
		if origin == "" || !s.originRegistered(c, origin) {
			return c.JSON(http.StatusForbidden, map[string]string{"error": "invalid_request",
				"error_description": "This origin is not in any client's allowed_cors_origins."})
		}
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Methods", methods)
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
		return c.NoContent(http.StatusNoContent)
	}
}

// allowOrigin marks the response readable by origin.
func allowOrigin(c echo.Context, origin string) {
	h := c.Response().Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
}

// clientCORS answers token and revocation requests from an origin the
// identified client registered.
func (s *Server) clientCORS(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		origin := c.Request().Header.Get("Origin")
		if origin == "" {
			return next(c)
		}
		c.Response().Header().Add("Vary", "Origin")
		if id := requestClientID(c.Request()); id != "" && s.clientAllows(c, id, origin) {
			allowOrigin(c, origin)
		}
		return next(c)
	}
}

// clientAllows reports whether client id registered origin.
func (s *Server) clientAllows(c echo.Context, id, origin string) bool {
	cl, err := s.store.Client(c.Request().Context(), id)
	return err == nil && slices.Contains(cl.AllowedCORSOrigins, origin)
}

// requestClientID is the client a token-style request names: the Basic
// user name (form-encoded, RFC 6749 §2.3.1) or client_id in the body.
func requestClientID(r *http.Request) string {
	if id, _, ok := r.BasicAuth(); ok {
		if u, err := url.QueryUnescape(id); err == nil {
			return u
		}
		return id
	}
	if err := r.ParseForm(); err != nil {
		return ""
	}
	return strings.TrimSpace(r.PostForm.Get("client_id"))
}
