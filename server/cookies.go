package server

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/secret"
)

// Cookie names. Over https they take the __Host- prefix, which pins them to
// this host, path / and Secure.
const (
	browserCookie = "latch_browser"
	loginCookie   = "latch_login"
)

func (s *Server) cookieName(base string) string {
	if s.secure {
		return "__Host-" + base
	}
	return base
}

// setCookie writes an HttpOnly, SameSite=Lax cookie: Lax so it survives the
// top-level navigation back from the host app, HttpOnly so no script reads it.
func (s *Server) setCookie(c echo.Context, base, value string, maxAge time.Duration) {
	c.SetCookie(&http.Cookie{
		Name: s.cookieName(base), Value: value, Path: "/", HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(maxAge.Seconds()),
	})
}

func (s *Server) cookie(c echo.Context, base string) string {
	ck, err := c.Cookie(s.cookieName(base))
	if err != nil {
		return ""
	}
	return ck.Value
}

// browserBinding returns the hash of this browser's binding cookie, setting
// a fresh cookie when it has none. One cookie serves concurrent flows in the
// same browser.
func (s *Server) browserBinding(c echo.Context) string {
	v := s.cookie(c, browserCookie)
	if len(v) < 40 {
		v = secret.New()
		s.setCookie(c, browserCookie, v, 400*24*time.Hour)
	}
	return s.hasher.Sum("browser", v)
}
