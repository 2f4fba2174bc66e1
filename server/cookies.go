package server

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
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

// bindingCookie names the binding cookie of one auth session. One cookie
// per session, so starting a flow never replaces the binding of another
// in progress in the same browser (a cross-site POST to the authorization
// endpoint arrives without Lax cookies and would otherwise overwrite the
// live one). The name is derived from the session id, which resume knows.
func bindingCookie(sessionID string) string {
	h := sha256.Sum256([]byte("latch-binding\x00" + sessionID))
	return browserCookie + "_" + base64.RawURLEncoding.EncodeToString(h[:9])
}

// bindBrowser gives this browser a fresh binding cookie for the session and
// returns its stored hash. The cookie lives as long as the session (a spent
// one stays until then, so a second visit is told "already used").
func (s *Server) bindBrowser(c echo.Context, sessionID string) string {
	s.capBindings(c)
	v := secret.New()
	s.setCookie(c, bindingCookie(sessionID), v, s.opt.AuthSessionLifetime)
	return s.hasher.Sum("browser", v)
}

// maxBindings is how many sign-ins one browser may have in progress at
// once; beyond it the oldest binding cookies are dropped, so a page that
// starts flows in a loop cannot grow every request's Cookie header.
const maxBindings = 16

// capBindings expires the oldest binding cookies the browser sent beyond
// maxBindings-1, making room for the one about to be set. Browsers send
// cookies of one path oldest first (RFC 6265 §5.4).
func (s *Server) capBindings(c echo.Context) {
	prefix := s.cookieName(browserCookie) + "_"
	var names []string
	for _, ck := range c.Request().Cookies() {
		if strings.HasPrefix(ck.Name, prefix) && !slices.Contains(names, ck.Name) {
			names = append(names, ck.Name)
		}
	}
	for _, name := range names[:max(0, len(names)-(maxBindings-1))] {
		c.SetCookie(&http.Cookie{Name: name, Value: "", Path: "/", HttpOnly: true, Secure: s.secure,
			SameSite: http.SameSiteLaxMode, MaxAge: -1})
	}
}
