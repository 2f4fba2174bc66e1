package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchhq/latch/endpoint"
	"github.com/latchhq/latch/logout"
	"github.com/latchhq/latch/storage"
)

// Sessions ends login sessions, with everything that follows from it
// (logout.Service), here and through /api (Register).
type Sessions interface {
	End(ctx context.Context, sel storage.SessionSelector, reason string) (int, error)
	APIRoutes
}

// idHint is what a valid id_token_hint says.
type idHint struct {
	sub, sid string
	aud      []string
}

// logout implements OpenID Connect RP-Initiated Logout 1.0 (GET and POST).
// With a valid id_token_hint it ends, without asking, the session the hint
// names and the browser's session when it is the same user's. Without one
// a page asks the person to confirm, so a link on another site cannot sign
// them out. It redirects only to a post_logout_redirect_uri the client
// registered, exactly; anything else is a 400 page.
func (s *Server) logout(c echo.Context) error {
	ctx := c.Request().Context()
	r := c.Request()
	if err := r.ParseForm(); err != nil {
		return logoutPage(c, http.StatusBadRequest, "Sign-out problem", "The sign-out request could not be read.")
	}
	if err := rawChecks(r.Form); err != nil {
		return logoutPage(c, http.StatusBadRequest, "Sign-out problem", "The sign-out request parameters are malformed or too large.")
	}
	form := r.Form
	hint, err := s.idTokenHint(ctx, form.Get("id_token_hint"))
	if err != nil {
		return logoutPage(c, http.StatusBadRequest, "Sign-out problem", "The id_token_hint is not an ID token issued by this server.")
	}
	clientID := form.Get("client_id")
	if hint != nil {
		if clientID != "" && !slices.Contains(hint.aud, clientID) {
			return logoutPage(c, http.StatusBadRequest, "Sign-out problem", "client_id does not match the audience of the id_token_hint.")
		}
		if clientID == "" && len(hint.aud) == 1 {
			clientID = hint.aud[0]
		}
	}
	redirect := form.Get("post_logout_redirect_uri")
	if redirect != "" {
		if err := s.checkPostLogoutRedirect(ctx, clientID, redirect); err != nil {
			if errors.Is(err, storage.ErrUnavailable) {
				return s.unavailable(c, err)
			}
			return logoutPage(c, http.StatusBadRequest, "Sign-out problem", err.Error())
		}
	}
	cookie := s.cookie(c, loginCookie)
	var login *storage.LoginSession
	if cookie != "" {
		login, err = s.store.LoginSession(ctx, s.hasher.Sum("login", cookie))
		if err != nil && !storage.IsNotFound(err) {
			s.log.Warn("logout: reading the login session failed", "err", err)
			return s.unavailable(c, err)
		}
	}
	if hint == nil && login != nil && !s.confirmed(c, cookie) {
		return s.confirmLogout(c, form, cookie)
	}
	endBrowser := login != nil && (hint == nil || hint.sub == login.Subject)
	var sels []storage.SessionSelector
	if endBrowser {
		sels = append(sels, storage.SessionSelector{IDHash: login.IDHash})
	}
	if hint != nil && hint.sid != "" && (login == nil || login.SID != hint.sid) {
		// The hint's session may live in another browser, or this
		// browser's cross-site POST came without its cookie.
		sels = append(sels, storage.SessionSelector{SID: hint.sid, Subject: hint.sub})
	}
	for _, sel := range sels {
		if _, err := s.sessions.End(ctx, sel, logout.ReasonLogout); err != nil {
			s.log.Warn("logout: ending the login session failed", "err", err)
			return s.unavailable(c, err)
		}
	}
	if cookie != "" && (login == nil || endBrowser) {
		c.SetCookie(&http.Cookie{Name: s.cookieName(loginCookie), Value: "", Path: "/", HttpOnly: true, Secure: s.secure,
			SameSite: http.SameSiteLaxMode, MaxAge: -1})
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	if redirect != "" {
		u, _ := url.Parse(redirect) // parsed when registered
		if st := form.Get("state"); st != "" {
			q := u.Query()
			q.Set("state", st)
			u.RawQuery = q.Encode()
		}
		return c.Redirect(http.StatusSeeOther, u.String())
	}
	return logoutPage(c, http.StatusOK, "Signed out", "You are signed out.")
}

// idTokenHint verifies a hint against Latch's keys. An expired ID token is
// still a good hint (Logout 1.0 §2: the RP's copy is usually old), but
// nothing else about it may be wrong, and an access token is not a hint.
func (s *Server) idTokenHint(ctx context.Context, raw string) (*idHint, error) {
	if raw == "" {
		return nil, nil
	}
	tok, err := s.keys.Signer("").Decode(ctx, raw)
	if err != nil {
		var ve *jwt.ValidationError
		if tok == nil || !errors.As(err, &ve) || ve.Errors != jwt.ValidationErrorExpired {
			return nil, fmt.Errorf("id_token_hint: %w", err)
		}
	}
	if typ, _ := tok.Header["typ"].(string); typ == "at+jwt" || typ == "logout+jwt" {
		return nil, errors.New("id_token_hint: not an ID token")
	}
	h := &idHint{}
	h.sub, _ = tok.Claims["sub"].(string)
	h.sid, _ = tok.Claims["sid"].(string)
	if iss, _ := tok.Claims["iss"].(string); iss != s.opt.Issuer || h.sub == "" {
		return nil, errors.New("id_token_hint: not issued here for a user")
	}
	if _, ok := tok.Claims["client_id"]; ok {
		return nil, errors.New("id_token_hint: an access token")
	}
	switch aud := tok.Claims["aud"].(type) {
	case string:
		h.aud = []string{aud}
	case []any:
		for _, a := range aud {
			if v, ok := a.(string); ok {
				h.aud = append(h.aud, v)
			}
		}
	}
	return h, nil
}

// checkPostLogoutRedirect allows only a URI the client registered, by
// exact string comparison.
func (s *Server) checkPostLogoutRedirect(ctx context.Context, clientID, redirect string) error {
	if clientID == "" {
		return errors.New("post_logout_redirect_uri needs an id_token_hint or a client_id.")
	}
	cl, err := s.store.Client(ctx, clientID)
	if storage.IsNotFound(err) {
		return errors.New("Unknown client_id.")
	}
	if err != nil {
		return err
	}
	if !slices.Contains(cl.PostLogoutRedirectURIs, redirect) {
		return errors.New("post_logout_redirect_uri is not registered for this client.")
	}
	return nil
}

// confirmValue ties the confirmation form to this browser's login cookie:
// another site cannot know it, so it cannot post a confirmed sign-out.
func (s *Server) confirmValue(cookie string) string { return s.hasher.Sum("logout-confirm", cookie) }

func (s *Server) confirmed(c echo.Context, cookie string) bool {
	got := c.Request().PostForm.Get("confirm")
	return c.Request().Method == http.MethodPost && got != "" &&
		subtle.ConstantTimeCompare([]byte(got), []byte(s.confirmValue(cookie))) == 1
}

// confirmLogout asks the person whether to sign out, keeping the
// request's parameters in the form it posts back.
func (s *Server) confirmLogout(c echo.Context, form url.Values, cookie string) error {
	fields := ""
	for _, k := range []string{"client_id", "post_logout_redirect_uri", "state"} {
		if v := form.Get(k); v != "" {
			fields += `<input type=hidden name="` + k + `" value="` + htmlEscape(v) + `">`
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTML(http.StatusOK, "<!doctype html><meta charset=utf-8><title>Sign out</title><h1>Sign out?</h1>"+
		`<form method=post action="`+endpoint.Logout+`">`+fields+
		`<input type=hidden name=confirm value="`+htmlEscape(s.confirmValue(cookie))+`">`+
		"<button type=submit>Sign out</button></form>")
}

func logoutPage(c echo.Context, status int, title, msg string) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTML(status, "<!doctype html><meta charset=utf-8><title>"+htmlEscape(title)+"</title><h1>"+
		htmlEscape(title)+"</h1><p>"+htmlEscape(msg)+"</p>")
}
