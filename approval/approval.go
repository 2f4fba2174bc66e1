// Package approval is the one moment Latch hands a human decision to the
// host app: it shows a pending auth session, records the host app's approve
// or deny exactly once, and hands back the URL that returns the browser to
// Latch. The built-in development consent page uses the same service.
package approval

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchhq/latch/apierror"
	"github.com/latchhq/latch/endpoint"
	"github.com/latchhq/latch/resources"
	"github.com/latchhq/latch/scopes"
	"github.com/latchhq/latch/secret"
	"github.com/latchhq/latch/storage"
)

// Store is what the approval step reads and changes.
type Store interface {
	AuthSession(ctx context.Context, id string) (*storage.AuthSession, error)
	DecideAuthSession(ctx context.Context, id string, d storage.Decision) (*storage.AuthSession, error)
	Client(ctx context.Context, id string) (*storage.Client, error)
	AuthorizationAt(ctx context.Context, subject, clientID, redirectURI string) (*storage.Authorization, error)
	RememberAuthorizationAt(ctx context.Context, subject, clientID, redirectURI string, scopes []string) error
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
}

// Events receives what happened, for the audit log; nil means no one listens.
type Events interface {
	SessionDecided(ctx context.Context, a *storage.AuthSession)
}

// Service implements the approval API.
type Service struct {
	store  Store
	scopes *scopes.Registry
	// resources describe the resource servers a request names.
	resources *resources.Registry
	issuer    string
	now       func() time.Time
	events    Events
}

// New builds the service. issuer is the base of the resume URL handed back.
func New(store Store, reg *scopes.Registry, res *resources.Registry, issuer string, now func() time.Time, events Events) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, scopes: reg, resources: res, issuer: issuer, now: now, events: events}
}

// ResumeURL is the absolute URL that returns a browser to Latch for id with
// the one-time verifier of the decision. It never carries a code: only the
// browser holding the binding cookie, presenting the verifier, can turn it
// into one. The session id alone, which the browser that started the flow
// knows, is not enough (the Dex CVE-2022-39222 class of attack).
func ResumeURL(issuer, id, verifier string) string {
	return issuer + endpoint.AuthorizeResume + "?session=" + url.QueryEscape(id) + "&verifier=" + url.QueryEscape(verifier)
}

// ClientView is the part of a client the host app shows its user.
type ClientView struct {
	ClientID   string `json:"client_id"`
	ClientName string `json:"client_name"`
	LogoURI    string `json:"logo_uri"`
	ClientURI  string `json:"client_uri"`
	PolicyURI  string `json:"policy_uri"`
	TOSURI     string `json:"tos_uri"`
	// ClientIDDocument marks a client identified by a metadata document
	// (its client_id is the document's URL, SPEC §6): nobody vetted it, so
	// a consent screen should say who serves it (DocumentHost).
	ClientIDDocument bool   `json:"client_id_document"`
	DocumentHost     string `json:"client_id_document_host,omitempty"`
}

// View is GET /api/auth_session/{id}.
type View struct {
	ID            string         `json:"id"`
	Client        ClientView     `json:"client"`
	Scopes        []scopes.Scope `json:"scopes"`
	Prompt        string         `json:"prompt"`
	LoginHint     string         `json:"login_hint"`
	ACRValues     string         `json:"acr_values"`
	State         string         `json:"state"`
	ExpiresAt     time.Time      `json:"expires_at"`
	User          string         `json:"user,omitempty"`
	GrantedScopes []string       `json:"granted_scopes,omitempty"`
	// MaxAge is the request's max_age in seconds, null when it sent none:
	// approve must then carry an auth_time no older than that.
	MaxAge *int64 `json:"max_age"`
	// RedirectURI is where the client will receive the answer; its host
	// (without port) and whether it is the user's own machine, so the
	// consent screen can show who really gets the code (MCP asks for it).
	RedirectURI      string `json:"redirect_uri"`
	RedirectHost     string `json:"redirect_host"`
	RedirectLoopback bool   `json:"redirect_loopback"`
	// Resources are the resource servers (RFC 8707) the tokens will be
	// for; ResourceDetails adds their display names.
	Resources       []string             `json:"resources"`
	ResourceDetails []resources.Resource `json:"resource_details"`
}

// sessionError maps storage outcomes to the statuses of SPEC §3.5.
func sessionError(err error) *apierror.Error {
	switch {
	case storage.IsNotFound(err):
		return apierror.NotFound("unknown auth session")
	case errors.Is(err, storage.ErrExpired):
		return apierror.Gone("auth session expired")
	case errors.Is(err, storage.ErrStateConflict):
		return apierror.Conflict("auth session was already decided")
	default:
		return apierror.Internal(err)
	}
}

// View describes a session for the host app's consent screen.
func (s *Service) View(ctx context.Context, id string) (*View, error) {
	a, err := s.store.AuthSession(ctx, id)
	if err != nil {
		return nil, sessionError(err)
	}
	c, err := s.store.Client(ctx, a.ClientID)
	if err != nil {
		return nil, sessionError(err)
	}
	form, _ := url.ParseQuery(a.RequestForm)
	v := &View{
		ID: a.ID,
		Client: ClientView{ClientID: c.ID, ClientName: c.Name, LogoURI: c.LogoURI, ClientURI: c.ClientURI,
			PolicyURI: c.PolicyURI, TOSURI: c.TOSURI, ClientIDDocument: c.Document},
		Scopes:    s.scopes.Describe(a.RequestedScopes),
		Prompt:    form.Get("prompt"),
		LoginHint: form.Get("login_hint"),
		ACRValues: form.Get("acr_values"),
		State:     a.State,
		ExpiresAt: a.ExpiresAt.UTC(),
		User:      a.LoginSubject,
		MaxAge:    maxAge(form),
	}
	v.RedirectURI = form.Get("redirect_uri")
	if v.RedirectURI == "" && len(c.RedirectURIs) == 1 {
		v.RedirectURI = c.RedirectURIs[0]
	}
	if u, err := url.Parse(v.RedirectURI); err == nil {
		v.RedirectHost = u.Hostname()
		v.RedirectLoopback = u.Scheme == "http" && storage.IsLoopbackHost(u.Hostname())
	}
	if c.Document {
		if u, err := url.Parse(c.ID); err == nil {
			v.Client.DocumentHost = u.Hostname()
		}
	}
	// Validated when the request came in; the default applies to a
	// request naming none, as it will for the tokens.
	v.Resources, _ = s.resources.Resolve(form["resource"])
	if v.Resources == nil {
		v.Resources = []string{}
	}
	v.ResourceDetails = s.resources.Describe(v.Resources)
	if a.LoginSubject != "" {
		if auth, err := s.store.AuthorizationAt(ctx, a.LoginSubject, a.ClientID, storage.GrantRedirect(a.ClientID, form.Get("redirect_uri"))); err == nil {
			v.GrantedScopes = auth.Scopes
		} else if !storage.IsNotFound(err) {
			return nil, apierror.Internal(err)
		}
	}
	return v, nil
}

// maxAge reads a request's max_age (seconds); nil when absent or not a
// non-negative integer.
func maxAge(form url.Values) *int64 {
	v := form.Get("max_age")
	if v == "" {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil
	}
	return &n
}

// ApproveRequest is the body of POST .../approve.
type ApproveRequest struct {
	User     string         `json:"user"`
	Scopes   *[]string      `json:"scopes"`
	Claims   map[string]any `json:"claims"`
	Remember bool           `json:"remember"`
	AuthTime *int64         `json:"auth_time"`
	ACR      string         `json:"acr"`
	// AccessTokenClaims are added to JWT access tokens and introspection;
	// IDTokenClaims to the ID token and userinfo whatever the scopes.
	AccessTokenClaims map[string]any `json:"access_token_claims"`
	IDTokenClaims     map[string]any `json:"id_token_claims"`
}

// ReservedClaims are the names Latch sets itself (SPEC §3.3); the host app
// may not supply them in claims, access_token_claims or id_token_claims.
var ReservedClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "cnf",
	"auth_time", "acr", "amr", "azp", "nonce", "at_hash", "c_hash", "sid", "typ"}

// MaxClaimsBytes bounds each claims object as JSON (SPEC §7).
const MaxClaimsBytes = 8 << 10

// checkClaims refuses a claims object that is too large or names a claim
// Latch owns; field names the object in the error.
func checkClaims(field string, m map[string]any, reserved bool) error {
	if len(m) == 0 {
		return nil
	}
	if b, err := json.Marshal(m); err != nil || len(b) > MaxClaimsBytes {
		return apierror.BadRequest("%s exceeds %d bytes", field, MaxClaimsBytes)
	}
	if !reserved {
		return nil
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if slices.Contains(ReservedClaims, k) {
			return apierror.BadRequest("%s: claim %q is set by Latch and cannot be supplied", field, k)
		}
	}
	return nil
}

// DenyRequest is the body of POST .../deny.
type DenyRequest struct {
	ErrorDescription string `json:"error_description"`
}

// maxSkew is how far ahead of Latch's clock an auth_time may lie: the
// host app's "now" on a clock a little ahead. Anything later is refused.
const maxSkew = 5 * time.Second

// Approve records the host app's approval and returns the resume URL.
func (s *Service) Approve(ctx context.Context, id string, req ApproveRequest) (string, error) {
	if strings.TrimSpace(req.User) == "" {
		return "", apierror.BadRequest("user is required")
	}
	if len(req.User) > 255 {
		return "", apierror.BadRequest("user must be at most 255 characters")
	}
	a, err := s.store.AuthSession(ctx, id)
	if err != nil {
		return "", sessionError(err)
	}
	granted := a.RequestedScopes
	if req.Scopes != nil {
		for _, sc := range *req.Scopes {
			if !slices.Contains(a.RequestedScopes, sc) {
				return "", apierror.BadRequest("scope %q was not requested", sc)
			}
		}
		granted = *req.Scopes
	}
	for _, c := range []struct {
		field    string
		m        map[string]any
		reserved bool
	}{{"claims", req.Claims, true}, {"access_token_claims", req.AccessTokenClaims, true}, {"id_token_claims", req.IDTokenClaims, true}} {
		if err := checkClaims(c.field, c.m, c.reserved); err != nil {
			return "", err
		}
	}
	now := s.now()
	authTime := now
	if req.AuthTime != nil {
		if *req.AuthTime <= 0 {
			return "", apierror.BadRequest("auth_time must be a positive unix time")
		}
		authTime = time.Unix(*req.AuthTime, 0)
		if authTime.After(now.Add(maxSkew)) {
			return "", apierror.BadRequest("auth_time is in the future")
		}
	}
	form, _ := url.ParseQuery(a.RequestForm)
	if ma := maxAge(form); ma != nil {
		// The client asked for a recent login: the host app must say when
		// the user authenticated, and it must be recent enough.
		if req.AuthTime == nil {
			return "", apierror.BadRequest("the request carries max_age=%d: auth_time is required", *ma)
		}
		if now.Sub(authTime) > time.Duration(*ma)*time.Second {
			return "", apierror.BadRequest("auth_time is older than the request's max_age of %d seconds: authenticate the user again", *ma)
		}
	}
	verifier := secret.New()
	var decided *storage.AuthSession
	decide := func(ctx context.Context) error {
		var err error
		decided, err = s.store.DecideAuthSession(ctx, id, storage.Decision{
			Approve: true, Subject: req.User, GrantedScopes: granted, Claims: req.Claims,
			Remember: req.Remember, AuthTime: authTime, ACR: req.ACR, Verifier: verifier,
			AccessTokenClaims: req.AccessTokenClaims, IDTokenClaims: req.IDTokenClaims,
		})
		if err != nil {
			return sessionError(err)
		}
		if req.Remember {
			form, _ := url.ParseQuery(a.RequestForm)
			if err := s.store.RememberAuthorizationAt(ctx, req.User, a.ClientID, storage.GrantRedirect(a.ClientID, form.Get("redirect_uri")), granted); err != nil {
				return apierror.Internal(err)
			}
		}
		return nil
	}
	// Remembering commits with the decision: were it to fail after the
	// decision committed, the host app's retry would meet a 409 for an
	// approval nobody can resume. Without it the decision is one statement
	// and needs no transaction.
	if req.Remember {
		err = s.store.InTx(ctx, decide)
	} else {
		err = decide(ctx)
	}
	if err != nil {
		if _, ok := asAPIError(err); ok {
			return "", err
		}
		return "", apierror.Internal(err)
	}
	if s.events != nil {
		s.events.SessionDecided(ctx, decided)
	}
	return ResumeURL(s.issuer, id, verifier), nil
}

// Deny records the host app's refusal and returns the resume URL.
func (s *Service) Deny(ctx context.Context, id string, req DenyRequest) (string, error) {
	if len(req.ErrorDescription) > 500 {
		return "", apierror.BadRequest("error_description must be at most 500 characters")
	}
	verifier := secret.New()
	decided, err := s.store.DecideAuthSession(ctx, id, storage.Decision{Approve: false, ErrorDescription: req.ErrorDescription, Verifier: verifier})
	if err != nil {
		return "", sessionError(err)
	}
	if s.events != nil {
		s.events.SessionDecided(ctx, decided)
	}
	return ResumeURL(s.issuer, id, verifier), nil
}

func asAPIError(err error) (*apierror.Error, bool) {
	var e *apierror.Error
	ok := errors.As(err, &e)
	return e, ok
}
