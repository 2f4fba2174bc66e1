package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/latchhq/latch/approval"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/provider"
	"github.com/latchhq/latch/scopes"
	"github.com/latchhq/latch/secret"
	"github.com/latchhq/latch/storage"
)

// authorize validates an authorization request, answers prompt=none from
// the browser's login session, and otherwise parks the request in an auth
// session and sends the browser to the host app.
func (s *Server) authorize(c echo.Context) error {
	ctx := c.Request().Context()
	ar, err := s.oauth.NewAuthorizeRequest(ctx, c.Request())
	if err != nil {
		return s.authorizeError(c, ar, err)
	}
	if err := s.checkAuthorizeRequest(ar, false); err != nil {
		return s.authorizeError(c, ar, err)
	}
	form := ar.GetRequestForm()
	prompts := strings.Fields(form.Get("prompt"))
	if slices.Contains(prompts, "none") && len(prompts) > 1 {
		return s.authorizeError(c, ar, fosite.ErrInvalidRequest.WithHint("prompt=none cannot be combined with other prompt values."))
	}
	login, err := s.currentLogin(c, ar)
	if err != nil {
		return s.authorizeError(c, ar, err)
	}
	if slices.Contains(prompts, "none") {
		return s.authorizeSilently(c, ar, login)
	}
	now := s.now()
	a := &storage.AuthSession{
		ID:              secret.New(),
		ClientID:        ar.GetClient().GetID(),
		RequestForm:     resumableForm(form),
		RequestedScopes: ar.GetRequestedScopes(),
		BrowserHash:     s.browserBinding(c),
		ExpiresAt:       now.Add(s.opt.AuthSessionLifetime),
	}
	if login != nil && !slices.Contains(prompts, "login") {
		a.LoginSubject = login.Subject
	}
	if err := s.store.CreateAuthSession(ctx, a); err != nil {
		return s.authorizeError(c, ar, fosite.ErrServerError.WithWrap(err))
	}
	s.audit.Record(ctx, audit.Event{Name: audit.SessionCreated, User: a.LoginSubject, ClientID: a.ClientID, Details: map[string]any{"scopes": a.RequestedScopes}})
	return c.Redirect(http.StatusSeeOther, s.approvalURL(a.ID))
}

func (s *Server) approvalURL(id string) string {
	base := s.opt.ApprovalURL
	if base == "" {
		base = s.opt.Issuer + approval.DevPagePath
	}
	u, err := url.Parse(base)
	if err != nil {
		return base + "?token=" + url.QueryEscape(id)
	}
	q := u.Query()
	q.Set("token", id)
	u.RawQuery = q.Encode()
	return u.String()
}

// checkAuthorizeRequest applies Latch's policy on top of fosite's checks,
// before anyone is asked to decide: code flow only, PKCE S256 always, known
// scopes only, no request objects, request_uri only from a pushed request
// (which is required when configured, globally or for the client). At the
// PAR endpoint itself (atPAR) the pushing requirement is what is satisfied.
func (s *Server) checkAuthorizeRequest(ar fosite.AuthorizeRequester, atPAR bool) error {
	form := ar.GetRequestForm()
	if !ar.GetResponseTypes().ExactOne("code") {
		return fosite.ErrUnsupportedResponseType.WithHint("Only response_type=code is supported.")
	}
	if form.Get("request") != "" {
		return fosite.ErrRequestNotSupported.WithHint("Request objects are not supported.")
	}
	// fosite has already redeemed a pushed request_uri and merged its
	// parameters into the form; any other request_uri is refused.
	pushed := strings.HasPrefix(form.Get("request_uri"), parPrefix)
	if form.Get("request_uri") != "" && !pushed {
		return fosite.ErrRequestURINotSupported.WithHint("Only request_uri values from the pushed authorization request endpoint are supported.")
	}
	if !atPAR && !pushed && (s.opt.PARRequired || requiresPAR(ar.GetClient())) {
		return fosite.ErrInvalidRequest.WithHint("Pushed authorization requests are required: POST the request to " + parPath + " first and send its request_uri.")
	}
	if jkt := form.Get("dpop_jkt"); jkt != "" && !validJKT(jkt) {
		return fosite.ErrInvalidRequest.WithHint("dpop_jkt must be a base64url SHA-256 JWK thumbprint.")
	}
	if form.Get("code_challenge") == "" {
		return fosite.ErrInvalidRequest.WithHint("PKCE is required: send code_challenge with code_challenge_method=S256.")
	}
	if form.Get("code_challenge_method") != "S256" {
		return fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256; plain is not allowed.")
	}
	if unknown := s.scopes.Unknown(ar.GetRequestedScopes()); len(unknown) > 0 {
		return fosite.ErrInvalidScope.WithHintf("Unknown scope(s): %s.", strings.Join(unknown, " "))
	}
	return nil
}

// currentLogin returns the browser's login session when it may be used for
// this request: not past max_age, and naming the id_token_hint's subject.
func (s *Server) currentLogin(c echo.Context, ar fosite.AuthorizeRequester) (*storage.LoginSession, error) {
	v := s.cookie(c, loginCookie)
	if v == "" {
		return nil, nil
	}
	l, err := s.store.LoginSession(c.Request().Context(), s.hasher.Sum("login", v))
	if storage.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fosite.ErrServerError.WithWrap(err)
	}
	form := ar.GetRequestForm()
	if ma := form.Get("max_age"); ma != "" {
		secs, err := strconv.ParseInt(ma, 10, 64)
		if err == nil && secs >= 0 && s.now().Sub(l.AuthTime) > time.Duration(secs)*time.Second {
			return nil, nil
		}
	}
	if hint := form.Get("id_token_hint"); hint != "" {
		tok, err := s.keys.Signer("").Decode(c.Request().Context(), hint)
		if err == nil {
			if sub, _ := tok.Claims["sub"].(string); sub != l.Subject {
				return nil, nil
			}
		}
	}
	return l, nil
}

// authorizeSilently answers prompt=none: a code when this browser's user has
// a remembered authorization covering every requested scope, else the error
// that tells the client what interaction is needed.
func (s *Server) authorizeSilently(c echo.Context, ar fosite.AuthorizeRequester, login *storage.LoginSession) error {
	if login == nil {
		return s.authorizeError(c, ar, fosite.ErrLoginRequired.WithHint("No login session for this browser."))
	}
	auth, err := s.store.Authorization(c.Request().Context(), login.Subject, ar.GetClient().GetID())
	if err != nil && !storage.IsNotFound(err) {
		return s.authorizeError(c, ar, fosite.ErrServerError.WithWrap(err))
	}
	if auth == nil || !covers(auth.Scopes, ar.GetRequestedScopes()) {
		return s.authorizeError(c, ar, fosite.ErrConsentRequired.WithHint("The user has not authorized every requested scope."))
	}
	return s.finishAuthorize(c, ar, grant{
		subject: login.Subject, scopes: ar.GetRequestedScopes(), claims: login.Claims,
		authTime: login.AuthTime, acr: login.ACR, requestedAt: s.now(),
	})
}

func covers(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// resume is where the host app sends the browser after its decision. Only
// the browser holding the binding cookie completes the session, and only
// once; then the original request is re-validated and answered.
func (s *Server) resume(c echo.Context) error {
	ctx := c.Request().Context()
	bv := s.cookie(c, browserCookie)
	if bv == "" {
		return browserPage(c, http.StatusBadRequest, "This sign-in link must be opened in the browser that started the sign-in.")
	}
	a, err := s.store.CompleteAuthSession(ctx, c.QueryParam("session"), s.hasher.Sum("browser", bv))
	switch {
	case err == nil:
	case storage.IsNotFound(err):
		return browserPage(c, http.StatusNotFound, "Unknown sign-in session.")
	case errors.Is(err, storage.ErrExpired):
		return browserPage(c, http.StatusGone, "This sign-in session has expired. Please start again.")
	case errors.Is(err, storage.ErrStateConflict):
		return browserPage(c, http.StatusConflict, "This sign-in session cannot be continued here: it is not decided yet, was already used, or belongs to another browser.")
	default:
		return err
	}
	r := c.Request().Clone(ctx)
	r.Method = http.MethodGet
	r.URL.RawQuery = a.RequestForm
	r.Body, r.Form, r.PostForm, r.ContentLength = http.NoBody, nil, nil, 0
	r.Header.Del("Content-Type")
	ar, err := s.oauth.NewAuthorizeRequest(ctx, r)
	if err != nil {
		return s.authorizeError(c, ar, err)
	}
	if a.State == storage.AuthDenied {
		desc := a.ErrorDescription
		if desc == "" {
			desc = "The resource owner or authorization server denied the request."
		}
		return s.authorizeError(c, ar, fosite.ErrAccessDenied.WithDescription(desc))
	}
	authTime := s.now()
	if a.AuthTime != nil {
		authTime = *a.AuthTime
	}
	if err := s.startLogin(c, a, authTime); err != nil {
		return s.authorizeError(c, ar, fosite.ErrServerError.WithWrap(err))
	}
	return s.finishAuthorize(c, ar, grant{
		subject: a.Subject, scopes: a.GrantedScopes, claims: a.Claims,
		authTime: authTime, acr: a.ACR, requestedAt: a.CreatedAt,
	})
}

// startLogin gives the browser a login session for the approved user.
func (s *Server) startLogin(c echo.Context, a *storage.AuthSession, authTime time.Time) error {
	v := secret.New()
	err := s.store.CreateLoginSession(c.Request().Context(), &storage.LoginSession{
		IDHash: s.hasher.Sum("login", v), Subject: a.Subject, AuthTime: authTime.UTC(), ACR: a.ACR,
		Claims: a.Claims, ExpiresAt: s.now().Add(s.opt.LoginSessionLifetime),
	})
	if err != nil {
		return err
	}
	s.setCookie(c, loginCookie, v, s.opt.LoginSessionLifetime)
	return nil
}

type grant struct {
	subject     string
	scopes      []string
	claims      map[string]any
	authTime    time.Time
	requestedAt time.Time
	acr         string
}

// finishAuthorize issues the code for a decided request.
func (s *Server) finishAuthorize(c echo.Context, ar fosite.AuthorizeRequester, g grant) error {
	ctx := c.Request().Context()
	for _, sc := range g.scopes {
		ar.GrantScope(sc)
	}
	for _, aud := range ar.GetRequestedAudience() {
		ar.GrantAudience(aud)
	}
	sess := provider.UserSession(s.opt.Issuer, ar.GetClient().GetID(), g.subject,
		g.authTime.Truncate(time.Second), g.requestedAt.Truncate(time.Second), g.acr,
		scopes.Claims(g.scopes, g.claims), g.claims)
	// dpop_jkt binds the code: the token request must prove that key.
	sess.JKT = ar.GetRequestForm().Get("dpop_jkt")
	// The code, PKCE and OIDC rows are written together or not at all: a
	// database lost between them would leave a live code that can never
	// be redeemed.
	var resp fosite.AuthorizeResponder
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		resp, err = s.oauth.NewAuthorizeResponse(ctx, ar, sess)
		return err
	})
	if err != nil {
		return s.authorizeError(c, ar, err)
	}
	resp.AddParameter("iss", s.opt.Issuer)
	s.audit.Record(ctx, audit.Event{Name: audit.CodeIssued, User: g.subject, ClientID: ar.GetClient().GetID(), Details: map[string]any{"scopes": g.scopes}})
	s.oauth.WriteAuthorizeResponse(ctx, c.Response(), ar, resp)
	return nil
}

// authorizeError answers a failed authorization request. Until the redirect
// URI is known to be the client's, the error is shown to the browser and
// never redirected; after, it is redirected with error, state and iss
// (RFC 9207), which fosite's own writer leaves out.
func (s *Server) authorizeError(c echo.Context, ar fosite.AuthorizeRequester, err error) error {
	if dbUnavailable(err) {
		// Never redirected: server_error would end the client's attempt,
		// while the same request works once the database is back.
		return s.writeUnavailable(c, err)
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.CodeField >= 500 {
		s.log.Error("authorization request failed", "err", err, "cause", rfc.Cause(), "debug", rfc.Debug())
	}
	if ar == nil || !ar.IsRedirectURIValid() || ar.GetRedirectURI() == nil {
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(rfc.CodeField, map[string]string{"error": rfc.ErrorField, "error_description": rfc.GetDescription()})
	}
	u := *ar.GetRedirectURI()
	q := u.Query()
	q.Set("error", rfc.ErrorField)
	q.Set("error_description", rfc.GetDescription())
	if st := ar.GetRequestForm().Get("state"); st != "" {
		q.Set("state", st)
	}
	q.Set("iss", s.opt.Issuer)
	u.RawQuery = q.Encode()
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, u.String())
}

// browserPage shows a plain error to a person (no redirect is safe here).
func browserPage(c echo.Context, status int, msg string) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTML(status, "<!doctype html><meta charset=utf-8><title>Sign-in problem</title><h1>Sign-in problem</h1><p>"+
		htmlEscape(msg)+"</p>")
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}
