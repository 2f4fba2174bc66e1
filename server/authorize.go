package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/latchhq/latch/approval"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/endpoint"
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
	r, pushed, err := s.rawAuthorizeRequest(c.Request())
	if err != nil {
		return s.authorizeError(c, nil, err)
	}
	if pushed {
		ctx = storage.WithPARClient(ctx, c.Request().Form.Get("client_id"))
	}
	if ok, err := s.checkDocumentClient(c, c.Request().Form.Get("client_id"), c.Request().Form.Get("redirect_uri")); !ok {
		return err
	}
	ar, err := s.newAuthorizeRequest(ctx, r)
	if err != nil {
		return s.authorizeError(c, ar, err)
	}
	if err := s.checkAuthorizeRequest(ar, pushed, false); err != nil {
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
		ExpiresAt:       now.Add(s.opt.AuthSessionLifetime),
	}
	a.BrowserHash = s.bindBrowser(c, a.ID)
	if login != nil && !slices.Contains(prompts, "login") {
		a.LoginSubject = login.Subject
	}
	if err := s.store.CreateAuthSession(ctx, a); err != nil {
		return s.authorizeError(c, ar, fosite.ErrServerError.WithWrap(err))
	}
	s.audit.Record(ctx, audit.Event{Name: audit.SessionCreated, User: a.LoginSubject, ClientID: a.ClientID, Details: map[string]any{"scopes": a.RequestedScopes}})
	return c.Redirect(http.StatusSeeOther, s.approvalURL(a.ID))
}

// newAuthorizeRequest is fosite's parser with SPEC §2's rules on top: a
// `localhost` loopback redirect matches on any port, and state is optional
// (PKCE, always required here, does its job). fosite's state check is the
// last step of its parsing, so a request whose only fault is an absent state
// is complete when it fails.
func (s *Server) newAuthorizeRequest(ctx context.Context, r *http.Request) (fosite.AuthorizeRequester, error) {
	if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return nil, fosite.ErrInvalidRequest.WithHint("Unable to parse the request parameters.").WithWrap(err)
	}
	ctx = storage.WithRequestedRedirect(ctx, r.Form.Get("redirect_uri"))
	ar, err := s.oauth.NewAuthorizeRequest(ctx, r)
	return ar, stateOptional(ar, err)
}

// stateOptional forgives fosite's invalid_state for a request without one.
func stateOptional(ar fosite.AuthorizeRequester, err error) error {
	if err != nil && ar != nil && ar.GetState() == "" && errors.Is(err, fosite.ErrInvalidState) {
		return nil
	}
	return err
}

// maxAuthorizeParams bounds the authorization parameters of one request
// (SPEC §7): an anonymous caller must not make Latch parse, keep or store
// more than a real request ever needs.
const maxAuthorizeParams = 16 << 10

// rawChecks refuses, from the raw parameters and before fosite parses
// anything, what Latch never processes: oversized or malformed parameters
// and request objects (fosite would decode a `request` JWT, even alg:none,
// before our refusal, and let it override the front channel). skip names
// parameters that are not authorization parameters (client credentials at
// PAR). The errors carry no redirect: nothing about the client is known yet.
func rawChecks(form url.Values, skip ...string) error {
	total := 0
	for k, vs := range form {
		if slices.Contains(skip, k) {
			continue
		}
		for _, v := range vs {
			total += len(k) + len(v) + 2
			if !utf8.ValidString(k) || !utf8.ValidString(v) || strings.ContainsRune(k+v, 0) {
				return fosite.ErrInvalidRequest.WithHint("Request parameters must be UTF-8 text without NUL characters.")
			}
		}
	}
	if total > maxAuthorizeParams {
		return fosite.ErrInvalidRequest.WithHint("The authorization request parameters exceed 16 KiB.")
	}
	if _, ok := form["request"]; ok {
		return fosite.ErrRequestNotSupported.WithHint("Request objects are not supported; use pushed authorization requests.")
	}
	return nil
}

// rawAuthorizeRequest checks the raw authorization request and returns the
// request fosite should parse, and whether it redeems a pushed request
// (decided here, from what the browser sent, never from merged
// parameters). A pushed request_uri carries everything: only client_id
// and request_uri reach fosite, which would otherwise let front-channel
// parameters (prompt, nonce, dpop_jkt, ...) sit beside the pushed ones.
func (s *Server) rawAuthorizeRequest(r *http.Request) (*http.Request, bool, error) {
	if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return nil, false, fosite.ErrInvalidRequest.WithHint("Unable to parse the request parameters.").WithWrap(err)
	}
	if err := rawChecks(r.Form); err != nil {
		return nil, false, err
	}
	uris, ok := r.Form["request_uri"]
	if !ok {
		return r, false, nil
	}
	if len(uris) != 1 || !strings.HasPrefix(uris[0], parPrefix) || len(r.Form["client_id"]) != 1 {
		return nil, false, fosite.ErrInvalidRequestURI.WithHint("Only request_uri values from the pushed authorization request endpoint, sent once with the client_id that pushed them, are supported.")
	}
	clean := r.Clone(r.Context())
	clean.Method = http.MethodGet
	clean.URL.RawQuery = url.Values{"client_id": r.Form["client_id"], "request_uri": uris}.Encode()
	clean.Body, clean.Form, clean.PostForm, clean.MultipartForm, clean.ContentLength = http.NoBody, nil, nil, nil, 0
	clean.Header.Del("Content-Type")
	return clean, true, nil
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
// scopes only, a pushed request (pushed, decided from the raw request) when
// required, globally or for the client. Request objects and foreign
// request_uri values never get this far (rawChecks). At the PAR endpoint
// itself (atPAR) the pushing requirement is what is satisfied.
func (s *Server) checkAuthorizeRequest(ar fosite.AuthorizeRequester, pushed, atPAR bool) error {
	form := ar.GetRequestForm()
	if !ar.GetResponseTypes().ExactOne("code") {
		return fosite.ErrUnsupportedResponseType.WithHint("Only response_type=code is supported.")
	}
	if !atPAR && !pushed && (s.opt.PARRequired || requiresPAR(ar.GetClient())) {
		return fosite.ErrInvalidRequest.WithHint("Pushed authorization requests are required: POST the request to " + endpoint.PAR + " first and send its request_uri.")
	}
	if jkt := form.Get("dpop_jkt"); jkt != "" && !validJKT(jkt) {
		return fosite.ErrInvalidRequest.WithHint("dpop_jkt must be a base64url SHA-256 JWK thumbprint.")
	}
	if form.Get("code_challenge") == "" {
		return fosite.ErrInvalidRequest.WithHint("PKCE is required: send code_challenge with code_challenge_method=S256.")
	}
	if !slices.Contains(provider.CodeChallengeMethods, form.Get("code_challenge_method")) {
		return fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256; plain is not allowed.")
	}
	if unknown := s.scopes.Unknown(ar.GetRequestedScopes()); len(unknown) > 0 {
		return fosite.ErrInvalidScope.WithHintf("Unknown scope(s): %s.", strings.Join(unknown, " "))
	}
	if _, err := s.requestedResources(form["resource"], ar.GetRequestedScopes()); err != nil {
		return err
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
	clientID := ar.GetClient().GetID()
	auth, err := s.store.AuthorizationAt(c.Request().Context(), login.Subject, clientID, storage.GrantRedirect(clientID, ar.GetRequestForm().Get("redirect_uri")))
	if err != nil && !storage.IsNotFound(err) {
		return s.authorizeError(c, ar, fosite.ErrServerError.WithWrap(err))
	}
	if auth == nil || !covers(auth.Scopes, ar.GetRequestedScopes()) {
		return s.authorizeError(c, ar, fosite.ErrConsentRequired.WithHint("The user has not authorized every requested scope."))
	}
	return s.finishAuthorize(c, ar, grant{
		subject: login.Subject, scopes: ar.GetRequestedScopes(), claims: login.Claims,
		authTime: login.AuthTime, acr: login.ACR, requestedAt: s.now(),
		sid: login.SID, sessionExpires: login.ExpiresAt,
		atClaims: login.AccessTokenClaims, idTokenClaims: login.IDTokenClaims,
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
// the browser holding the session's binding cookie, presenting the
// decision's one-time verifier, completes the session, and only once; then
// the original request is re-validated and answered. Completion, login
// session and code commit together: if any of them fails, nothing is
// written and the same browser can follow the same link again.
func (s *Server) resume(c echo.Context) error {
	ctx := c.Request().Context()
	id, verifier := c.QueryParam("session"), c.QueryParam("verifier")
	bv := s.cookie(c, bindingCookie(id))
	if bv == "" {
		return browserPage(c, http.StatusBadRequest, "This sign-in link must be opened in the browser that started the sign-in.")
	}
	if verifier == "" {
		return browserPage(c, http.StatusBadRequest, "This sign-in link is incomplete: follow the link the application gave you.")
	}
	var answer func() error
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		answer, err = s.completeResume(ctx, c, id, s.hasher.Sum("browser", bv), verifier)
		return err
	})
	if err != nil && !errors.Is(err, errRefused) {
		// The database failed (or the commit did): nothing was written,
		// so the same link works again once it is back.
		s.log.Error("completing a decided sign-in failed", "err", err)
		return s.unavailable(c, err)
	}
	return answer()
}

// errRefused rolls a resume back after it chose an answer other than a code.
var errRefused = errors.New("resume refused")

// completeResume runs inside the resume transaction. It returns the answer
// to write once the transaction ends; a non-nil error rolls back.
func (s *Server) completeResume(ctx context.Context, c echo.Context, id, browserHash, verifier string) (func() error, error) {
	a, err := s.store.CompleteAuthSession(ctx, id, browserHash, verifier)
	switch {
	case err == nil:
	case storage.IsNotFound(err):
		return func() error { return browserPage(c, http.StatusNotFound, "Unknown sign-in session.") }, errRefused
	case errors.Is(err, storage.ErrExpired):
		return func() error {
			return browserPage(c, http.StatusGone, "This sign-in session has expired. Please start again.")
		}, errRefused
	case errors.Is(err, storage.ErrStateConflict):
		return func() error {
			return browserPage(c, http.StatusConflict, "This sign-in session cannot be continued here: it is not decided yet, was already used, or belongs to another browser.")
		}, errRefused
	default:
		return nil, err
	}
	r := c.Request().Clone(ctx)
	r.Method = http.MethodGet
	r.URL.RawQuery = a.RequestForm
	r.Body, r.Form, r.PostForm, r.ContentLength = http.NoBody, nil, nil, 0
	r.Header.Del("Content-Type")
	ar, err := s.newAuthorizeRequest(ctx, r)
	if err == nil && ar.GetClient().GetID() != a.ClientID {
		// The consent screen named a.ClientID; a code for anyone else
		// would be a code the user never agreed to, and its redirect URI
		// is not one to send anything to.
		return func() error {
			c.Response().Header().Set("Cache-Control", "no-store")
			return c.JSON(http.StatusBadRequest, map[string]string{"error": "invalid_request",
				"error_description": "The request no longer names the client that was approved."})
		}, errRefused
	}
	if errors.Is(err, storage.ErrUnavailable) {
		return nil, err
	}
	if err != nil {
		return func() error { return s.authorizeError(c, ar, err) }, errRefused
	}
	if a.State == storage.AuthDenied {
		return func() error { return s.deniedResponse(c, ar, a.ErrorDescription) }, nil
	}
	authTime := s.now()
	if a.AuthTime != nil {
		authTime = *a.AuthTime
	}
	login, err := s.startLogin(ctx, a, authTime)
	if err != nil {
		return nil, err
	}
	resp, err := s.authorizeResponse(ctx, ar, grant{
		subject: a.Subject, scopes: a.GrantedScopes, claims: a.Claims,
		authTime: authTime, acr: a.ACR, requestedAt: a.CreatedAt,
		sid: login.SID, sessionExpires: login.ExpiresAt,
		atClaims: a.AccessTokenClaims, idTokenClaims: a.IDTokenClaims,
	})
	if err != nil {
		return nil, err
	}
	return func() error {
		s.setCookie(c, loginCookie, login.cookie, s.opt.LoginSessionLifetime)
		s.writeAuthorizeResponse(c, ar, resp, a.Subject, a.GrantedScopes)
		return nil
	}, nil
}

// deniedResponse tells the client the user said no, with the host app's
// description verbatim (fosite's error text would append its own hint).
func (s *Server) deniedResponse(c echo.Context, ar fosite.AuthorizeRequester, desc string) error {
	if desc == "" {
		desc = "The resource owner or authorization server denied the request."
	}
	return s.redirectError(c, ar, "access_denied", desc)
}

// newLogin is a login session just stored and the cookie value to give
// the browser once it is committed.
type newLogin struct {
	*storage.LoginSession
	cookie string
}

// startLogin stores a login session for the approved user.
func (s *Server) startLogin(ctx context.Context, a *storage.AuthSession, authTime time.Time) (newLogin, error) {
	v := secret.New()
	l := &storage.LoginSession{
		IDHash: s.hasher.Sum("login", v), SID: secret.New(), Subject: a.Subject, AuthTime: authTime.UTC(), ACR: a.ACR,
		Claims: a.Claims, ExpiresAt: s.now().Add(s.opt.LoginSessionLifetime),
		AccessTokenClaims: a.AccessTokenClaims, IDTokenClaims: a.IDTokenClaims,
	}
	if err := s.store.CreateLoginSession(ctx, l); err != nil {
		return newLogin{}, fmt.Errorf("create login session: %w", err)
	}
	return newLogin{LoginSession: l, cookie: v}, nil
}

type grant struct {
	subject     string
	scopes      []string
	claims      map[string]any
	authTime    time.Time
	requestedAt time.Time
	acr         string
	// sid names the login session the grant is issued under (the ID
	// token's sid); sessionExpires is when that session runs out.
	sid            string
	sessionExpires time.Time
	// The host app's additions to the access token and the ID token.
	atClaims, idTokenClaims map[string]any
}

// finishAuthorize issues the code for a decided request.
func (s *Server) finishAuthorize(c echo.Context, ar fosite.AuthorizeRequester, g grant) error {
	resp, err := s.authorizeResponse(c.Request().Context(), ar, g)
	if err != nil {
		return s.authorizeError(c, ar, err)
	}
	s.writeAuthorizeResponse(c, ar, resp, g.subject, g.scopes)
	return nil
}

// authorizeResponse stores the code (and its PKCE and OpenID Connect
// sessions) through ctx, so a caller's transaction covers it.
func (s *Server) authorizeResponse(ctx context.Context, ar fosite.AuthorizeRequester, g grant) (fosite.AuthorizeResponder, error) {
	for _, sc := range g.scopes {
		ar.GrantScope(sc)
	}
	for _, aud := range ar.GetRequestedAudience() {
		ar.GrantAudience(aud)
	}
	sess := provider.UserSession(s.opt.Issuer, ar.GetClient().GetID(), g.subject,
		g.authTime.Truncate(time.Second), g.requestedAt.Truncate(time.Second), g.acr,
		scopes.Claims(g.scopes, g.claims), g.claims, g.idTokenClaims, g.atClaims)
	// dpop_jkt binds the code: the token request must prove that key.
	sess.JKT = ar.GetRequestForm().Get("dpop_jkt")
	// The resources the tokens of this grant may be for (checked when the
	// request came in, and again here in case the registry changed while
	// the user decided).
	res, err := s.requestedResources(ar.GetRequestForm()["resource"], ar.GetRequestedScopes())
	if err != nil {
		return nil, err
	}
	sess.Resources = res
	if g.sid != "" {
		if sess.Claims.Extra == nil {
			sess.Claims.Extra = map[string]any{}
		}
		sess.Claims.Extra["sid"] = g.sid
	}
	// The code, PKCE and OIDC rows are written together or not at all: a
	// database lost between them would leave a live code that can never
	// be redeemed. The note that the client got a grant under the login
	// session (whose end must reach it and may revoke the grant) commits
	// with them.
	var resp fosite.AuthorizeResponder
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		if resp, err = s.oauth.NewAuthorizeResponse(ctx, ar, sess); err != nil || g.sid == "" {
			return err
		}
		err = s.store.RecordSessionGrant(ctx, &storage.SessionGrant{
			SID: g.sid, RequestID: ar.GetID(), ClientID: ar.GetClient().GetID(), Subject: g.subject,
			Offline: slices.Contains(g.scopes, "offline_access"), ExpiresAt: g.sessionExpires.UTC(),
		})
		if err != nil {
			return fmt.Errorf("record the grant under its login session: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	resp.AddParameter("iss", s.opt.Issuer)
	// fosite always adds scope, empty when nothing was granted; an empty
	// parameter says nothing and some clients read it as "no scope field".
	if resp.GetParameters().Get("scope") == "" {
		resp.GetParameters().Del("scope")
	}
	// Likewise state: a request without one gets none back.
	if resp.GetParameters().Get("state") == "" {
		resp.GetParameters().Del("state")
	}
	return resp, nil
}

func (s *Server) writeAuthorizeResponse(c echo.Context, ar fosite.AuthorizeRequester, resp fosite.AuthorizeResponder, subject string, granted []string) {
	ctx := c.Request().Context()
	s.audit.Record(ctx, audit.Event{Name: audit.CodeIssued, User: subject, ClientID: ar.GetClient().GetID(), Details: map[string]any{"scopes": granted}})
	if ar.GetResponseMode() == fosite.ResponseModeFormPost {
		if err := writeFormPost(c, ar.GetRedirectURI(), resp.GetParameters()); err != nil {
			s.log.Warn("writing a form_post response", "err", err)
		}
		return
	}
	s.oauth.WriteAuthorizeResponse(ctx, c.Response(), ar, resp)
}

// authorizeError answers a failed authorization request. Until the redirect
// URI is known to be the client's, the error is shown to the browser (400,
// never 401: there is no client to authenticate here) and never
// redirected; after, it is redirected with error, state and iss (RFC
// 9207), which fosite's own writer leaves out. A database outage is a 503
// page either way: redirecting server_error would end a sign-in that a
// retry could finish.
func (s *Server) authorizeError(c echo.Context, ar fosite.AuthorizeRequester, err error) error {
	rfc := fosite.ErrorToRFC6749Error(err)
	// fosite reports any failed client lookup as invalid_client; only a
	// client that is not there is the request's fault.
	lookupFailed := rfc.ErrorField == fosite.ErrInvalidClient.ErrorField && rfc.Cause() != nil && !storage.IsNotFound(rfc.Cause())
	if dbUnavailable(err) || lookupFailed {
		// Never redirected: server_error would end the client's attempt,
		// while the same request works once the database is back.
		return s.unavailable(c, err)
	}
	s.logFailure("authorization request failed", err)
	if ar == nil || !ar.IsRedirectURIValid() || ar.GetRedirectURI() == nil {
		status := rfc.CodeField
		if status == http.StatusUnauthorized {
			status = http.StatusBadRequest
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(status, map[string]string{"error": rfc.ErrorField, "error_description": rfc.GetDescription()})
	}
	return s.redirectError(c, ar, rfc.ErrorField, rfc.GetDescription())
}

// redirectError sends an error to the client's (validated) redirect URI,
// in the response mode the request asked for.
func (s *Server) redirectError(c echo.Context, ar fosite.AuthorizeRequester, code, desc string) error {
	params := url.Values{"error": {code}, "error_description": {desc}, "iss": {s.opt.Issuer}}
	if st := ar.GetRequestForm().Get("state"); st != "" {
		params.Set("state", st)
	}
	if ar.GetResponseMode() == fosite.ResponseModeFormPost {
		return writeFormPost(c, ar.GetRedirectURI(), params)
	}
	u := *ar.GetRedirectURI()
	q := u.Query()
	for k := range params {
		q.Set(k, params.Get(k))
	}
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
