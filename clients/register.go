package clients

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/apierror"
	"github.com/latchhq/latch/endpoint"
	"github.com/latchhq/latch/provider"
	"github.com/latchhq/latch/ratelimit"
	"github.com/latchhq/latch/secret"
	"github.com/latchhq/latch/storage"
)

// Registration modes (SPEC §6).
const (
	RegistrationOff   = "off"
	RegistrationOpen  = "open"
	RegistrationToken = "token"
)

// RegistrationStore is what dynamic registration needs from storage.
type RegistrationStore interface {
	Client(ctx context.Context, id string) (*storage.Client, error)
	CreateRegistrationToken(ctx context.Context, t *storage.RegistrationToken) error
	ListRegistrationTokens(ctx context.Context) ([]storage.RegistrationToken, error)
	DeleteRegistrationToken(ctx context.Context, id string) error
	UseRegistrationToken(ctx context.Context, hash string) error
}

// CredentialLimits counts failed registration tokens like other failed
// credentials (SPEC §7); ratelimit.Failures is one.
type CredentialLimits interface {
	Locked(ctx context.Context, ip, clientID string) (time.Duration, bool)
	Failed(ctx context.Context, ip, clientID string)
}

// Registration serves dynamic client registration (RFC 7591) and its
// management (RFC 7592), and the admin API for initial access tokens.
type Registration struct {
	svc      *Service
	store    RegistrationStore
	hasher   *secret.Hasher
	limits   CredentialLimits
	mode     string
	issuer   string
	now      func() time.Time
	register echo.MiddlewareFunc
}

// NewRegistration builds the registration endpoints. limits may be nil
// (no lock-out); perIP limits registrations per address (SPEC §7).
func NewRegistration(svc *Service, store RegistrationStore, hasher *secret.Hasher, limits CredentialLimits,
	mode, issuer string, now func() time.Time, perIP echo.MiddlewareFunc) *Registration {
	if now == nil {
		now = time.Now
	}
	return &Registration{svc: svc, store: store, hasher: hasher, limits: limits, mode: mode, issuer: issuer, now: now, register: perIP}
}

// Mount adds /oauth2/register and /oauth2/register/{client_id} to e (rate
// limited per address) and /registration_tokens to api (admin key).
func (r *Registration) Mount(e *echo.Echo, api *echo.Group) {
	mw := []echo.MiddlewareFunc{noStore}
	if r.register != nil {
		mw = append(mw, r.register)
	}
	e.POST(endpoint.Register, r.handleRegister, mw...)
	e.GET(endpoint.Register+"/:client_id", r.handleRead, noStore)
	e.PUT(endpoint.Register+"/:client_id", r.handleUpdate, noStore)
	e.DELETE(endpoint.Register+"/:client_id", r.handleDelete, noStore)
	api.POST(endpoint.RegistrationTokens, r.handleCreateToken)
	api.GET(endpoint.RegistrationTokens, r.handleListTokens)
	api.DELETE(endpoint.RegistrationTokens+"/:id", r.handleDeleteToken)
}

func noStore(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		c.Response().Header().Set("Pragma", "no-cache")
		return next(c)
	}
}

// registrationRequest is RFC 7591 client metadata. Unknown members are
// ignored (RFC 7591 §2: a server ignores metadata it does not understand).
type registrationRequest struct {
	request
}

// RegistrationView is the RFC 7591 §3.2.1 answer.
type RegistrationView struct {
	View
	ClientIDIssuedAt        int64  `json:"client_id_issued_at"`
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri"`
}

func regError(status int, code, desc string) error {
	return &apierror.Error{Status: status, Code: code, Description: desc}
}

func (r *Registration) handleRegister(c echo.Context) error {
	ctx := c.Request().Context()
	anonymous := true
	switch r.mode {
	case RegistrationOpen:
	case RegistrationToken:
		if err := r.useInitialToken(c); err != nil {
			return err
		}
		anonymous = false
	default:
		return regError(http.StatusForbidden, "access_denied", "Dynamic client registration is not enabled on this server.")
	}
	m, appType, err := r.decode(c)
	if err != nil {
		return err
	}
	if m.ClientID != "" {
		return httpError(invalid("client_id", "is assigned by the server"))
	}
	if err := registrantRules(m, appType, anonymous); err != nil {
		return httpError(err)
	}
	token := secret.New()
	cl, plain, err := r.svc.CreateDynamic(ctx, m, r.hasher.Sum("registration", token))
	if err != nil {
		return httpError(err)
	}
	return c.JSON(http.StatusCreated, r.view(cl, plain, token))
}

// registrantRules are what dynamic registration adds to the management
// API's validation: owner and audience are the host app's to set, an
// anonymous registrant never gets client_credentials (a machine client
// anyone could mint), and application_type constrains redirect URIs as
// OpenID Connect Registration §2 says when the registrant names one
// (RFC 7591 clients, MCP clients among them, do not know it: absent, the
// management API's redirect rules alone apply).
func registrantRules(m Metadata, appType string, anonymous bool) error {
	if m.Owner != "" {
		return invalid("owner", "is set by the host app, not at registration")
	}
	if len(m.Audience) > 0 {
		return invalid("audience", "is set by the host app, not at registration")
	}
	if anonymous && slices.Contains(m.GrantTypes, provider.GrantClientCredentials) {
		return invalid("grant_types", "client_credentials needs an initial access token from the server's operator")
	}
	switch appType {
	case "":
	case "web":
		for _, u := range m.RedirectURIs {
			if p, err := url.Parse(u); err != nil || p.Scheme != "https" {
				return invalid("redirect_uris", "%q: web clients use https redirect URIs (register application_type native for loopback or app schemes)", u)
			}
		}
	case "native":
		for _, u := range m.RedirectURIs {
			if p, err := url.Parse(u); err != nil || p.Scheme == "https" {
				return invalid("redirect_uris", "%q: native clients use loopback http or private-use scheme redirect URIs", u)
			}
		}
	default:
		return invalid("application_type", "must be web or native")
	}
	return nil
}

func (r *Registration) decode(c echo.Context) (Metadata, string, error) {
	req := c.Request()
	if ct := req.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return Metadata{}, "", httpError(invalid("body", "Content-Type must be application/json"))
	}
	var body registrationRequest
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return Metadata{}, "", regError(http.StatusRequestEntityTooLarge, "invalid_request", "body too large")
		}
		return Metadata{}, "", httpError(invalid("body", "must be a JSON object of client metadata"))
	}
	m, err := body.metadata()
	if err != nil {
		return Metadata{}, "", httpError(err)
	}
	return m, m.ApplicationType, nil
}

func (r *Registration) view(cl *storage.Client, plain, token string) RegistrationView {
	return RegistrationView{View: NewView(cl, plain), ClientIDIssuedAt: cl.CreatedAt.Unix(),
		RegistrationAccessToken: token, RegistrationClientURI: r.issuer + endpoint.Register + "/" + url.PathEscape(cl.ID)}
}

// bearer is the Bearer token of a request, or "".
func bearer(c echo.Context) string {
	scheme, tok, ok := strings.Cut(c.Request().Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// credentialRefused answers a missing or wrong token (RFC 6750 §3.1) and
// counts a wrong one against the sender's address and the client id.
func (r *Registration) credentialRefused(c echo.Context, clientID string, presented bool) error {
	if presented && r.limits != nil {
		r.limits.Failed(c.Request().Context(), ratelimit.ClientIP(c.Request()), clientID)
	}
	c.Response().Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	return regError(http.StatusUnauthorized, "invalid_token", "The access token is missing, invalid, expired or used up.")
}

// locked refuses a sender (or client id) locked out by failed credentials.
func (r *Registration) locked(c echo.Context, clientID string) error {
	if r.limits == nil {
		return nil
	}
	wait, locked := r.limits.Locked(c.Request().Context(), ratelimit.ClientIP(c.Request()), clientID)
	if !locked {
		return nil
	}
	c.Response().Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	return regError(http.StatusTooManyRequests, "rate_limited", "Too many failed tokens from this address; retry later.")
}

func (r *Registration) useInitialToken(c echo.Context) error {
	tok := bearer(c)
	if err := r.locked(c, ""); err != nil {
		return err
	}
	if tok == "" {
		return r.credentialRefused(c, "", false)
	}
	err := r.store.UseRegistrationToken(c.Request().Context(), r.hasher.Sum("initial-access", tok))
	switch {
	case storage.IsNotFound(err):
		return r.credentialRefused(c, "", true)
	case err != nil:
		return apierror.Internal(err)
	}
	return nil
}

// managed loads the client a registration access token manages (RFC 7592
// §2). Any failure is the same 401, so ids cannot be probed.
func (r *Registration) managed(c echo.Context) (*storage.Client, error) {
	if r.mode == RegistrationOff {
		return nil, regError(http.StatusForbidden, "access_denied", "Dynamic client registration is not enabled on this server.")
	}
	id := c.Param("client_id")
	if err := r.locked(c, id); err != nil {
		return nil, err
	}
	tok := bearer(c)
	if tok == "" {
		return nil, r.credentialRefused(c, id, false)
	}
	cl, err := r.store.Client(c.Request().Context(), id)
	if err != nil && !storage.IsNotFound(err) {
		return nil, apierror.Internal(err)
	}
	want := r.hasher.Sum("registration", tok)
	if cl == nil || !cl.Dynamic || subtle.ConstantTimeCompare([]byte(want), []byte(cl.RegistrationTokenHash)) != 1 {
		return nil, r.credentialRefused(c, id, true)
	}
	return cl, nil
}

func (r *Registration) handleRead(c echo.Context) error {
	cl, err := r.managed(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r.view(cl, "", ""))
}

// handleUpdate replaces the metadata (RFC 7592 §2.2): the same rules as
// registration; the client keeps its id, secret and token.
func (r *Registration) handleUpdate(c echo.Context) error {
	cl, err := r.managed(c)
	if err != nil {
		return err
	}
	m, appType, err := r.decode(c)
	if err != nil {
		return err
	}
	if m.ClientID != cl.ID {
		return httpError(invalid("client_id", "must be the client's client_id"))
	}
	// Registered with an initial access token or not, a client updating
	// itself is anonymous: client_credentials is never added this way.
	anonymous := !slices.Contains(cl.GrantTypes, provider.GrantClientCredentials)
	if err := registrantRules(m, appType, anonymous); err != nil {
		return httpError(err)
	}
	updated, err := r.svc.Update(c.Request().Context(), cl.ID, m)
	if err != nil {
		return httpError(err)
	}
	return c.JSON(http.StatusOK, r.view(updated, "", ""))
}

func (r *Registration) handleDelete(c echo.Context) error {
	cl, err := r.managed(c)
	if err != nil {
		return err
	}
	if err := r.svc.Delete(c.Request().Context(), cl.ID); err != nil {
		return httpError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// TokenRequest is POST /api/registration_tokens.
type TokenRequest struct {
	ExpiresIn int64 `json:"expires_in"`
	MaxUses   int   `json:"max_uses"`
}

// TokenView is an initial access token; Token only when just created.
type TokenView struct {
	storage.RegistrationToken
	Token string `json:"token,omitempty"`
}

// CreateToken makes an initial access token, returned once in plaintext.
func (r *Registration) CreateToken(ctx context.Context, req TokenRequest) (TokenView, error) {
	if req.ExpiresIn < 0 || req.MaxUses < 0 {
		return TokenView{}, apierror.BadRequest("expires_in and max_uses must not be negative (0: no limit)")
	}
	plain := "latch_reg_" + secret.New()
	t := storage.RegistrationToken{ID: secret.ID(9), Hash: r.hasher.Sum("initial-access", plain), MaxUses: req.MaxUses}
	if req.ExpiresIn > 0 {
		exp := r.now().Add(time.Duration(req.ExpiresIn) * time.Second).UTC().Truncate(time.Second)
		t.ExpiresAt = &exp
	}
	if err := r.store.CreateRegistrationToken(ctx, &t); err != nil {
		return TokenView{}, err
	}
	return TokenView{RegistrationToken: t, Token: plain}, nil
}

func (r *Registration) handleCreateToken(c echo.Context) error {
	var req TokenRequest
	if err := apierror.DecodeJSON(c.Request(), &req, true); err != nil {
		return err
	}
	v, err := r.CreateToken(c.Request().Context(), req)
	if err != nil {
		return httpError(err)
	}
	return c.JSON(http.StatusCreated, v)
}

func (r *Registration) handleListTokens(c echo.Context) error {
	list, err := r.store.ListRegistrationTokens(c.Request().Context())
	if err != nil {
		return apierror.Internal(err)
	}
	out := make([]TokenView, 0, len(list))
	for _, t := range list {
		out = append(out, TokenView{RegistrationToken: t})
	}
	return c.JSON(http.StatusOK, map[string]any{"registration_tokens": out})
}

func (r *Registration) handleDeleteToken(c echo.Context) error {
	err := r.store.DeleteRegistrationToken(c.Request().Context(), c.Param("id"))
	if storage.IsNotFound(err) {
		return apierror.NotFound("unknown registration token")
	}
	if err != nil {
		return apierror.Internal(err)
	}
	return c.NoContent(http.StatusNoContent)
}
