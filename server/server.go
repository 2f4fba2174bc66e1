// Package server is Latch's HTTP surface: the OAuth 2.1 / OpenID Connect
// endpoints, discovery and JWKS, health and metrics, and the mounting of the
// host app's API. It translates HTTP to the provider, storage and approval
// packages and back, and maps every error to its wire form in one place.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/ory/fosite"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latchhq/latch/apierror"
	"github.com/latchhq/latch/apikeys"
	"github.com/latchhq/latch/approval"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/dpop"
	"github.com/latchhq/latch/endpoint"
	"github.com/latchhq/latch/keys"
	"github.com/latchhq/latch/ratelimit"
	"github.com/latchhq/latch/resources"
	"github.com/latchhq/latch/scopes"
	"github.com/latchhq/latch/secret"
	"github.com/latchhq/latch/storage"
)

// Store is what the HTTP layer needs from storage directly.
type Store interface {
	Ping(ctx context.Context) error
	Client(ctx context.Context, id string) (*storage.Client, error)
	CreateAuthSession(ctx context.Context, a *storage.AuthSession) error
	CompleteAuthSession(ctx context.Context, id, browserHash, verifier string) (*storage.AuthSession, error)
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	CreateLoginSession(ctx context.Context, l *storage.LoginSession) error
	LoginSession(ctx context.Context, idHash string) (*storage.LoginSession, error)
	RecordSessionGrant(ctx context.Context, g *storage.SessionGrant) error
	AuthorizationAt(ctx context.Context, subject, clientID, redirectURI string) (*storage.Authorization, error)
	APIKeyByHash(ctx context.Context, hash string) (*storage.APIKey, error)
	RevokeGrant(ctx context.Context, requestID string) error
	MarkClientObtainedToken(ctx context.Context, id string) error
	CORSOriginRegistered(ctx context.Context, origin string) (bool, error)
	RefreshReplay(ctx context.Context, signature string) (*storage.RefreshReplay, error)
	SealRefreshResponse(ctx context.Context, spent, sealed string) error
}

// Options are the HTTP-level settings.
type Options struct {
	Issuer               string
	ApprovalURL          string // empty: the built-in development page
	AuthSessionLifetime  time.Duration
	LoginSessionLifetime time.Duration
	MaxBodyBytes         int64
	// IDTokenSigningAlg signs ID tokens for clients that register none.
	IDTokenSigningAlg string
	// RefreshReuseInterval is the server's refresh reuse interval (a
	// client's refresh_reuse_interval overrides it).
	RefreshReuseInterval time.Duration
	// PARRequired refuses authorization requests not pushed first.
	PARRequired       bool
	ReadTimeout       time.Duration
	ReadHeaderTimeout time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// Limits are the per-address request rates (SPEC §7).
	Limits Limits
	// SeparateAdmin serves /metrics and /api from AdminHandler only, for a
	// second listener the public network cannot reach; Handler then
	// answers 404 for them.
	SeparateAdmin bool
	// ClientMetadataDocuments says https client ids are accepted (SPEC §6).
	ClientMetadataDocuments bool
	// RegistrationEndpoint is advertised in discovery; empty while dynamic
	// registration is off.
	RegistrationEndpoint string
}

// Deps are the server's collaborators, built by main.
type Deps struct {
	Store    Store
	OAuth    *fosite.Fosite
	Keys     *keys.Manager
	Hasher   *secret.Hasher
	Scopes   *scopes.Registry
	Approval *approval.Service
	Logger   *slog.Logger
	Metrics  *prometheus.Registry
	Now      func() time.Time
	Audit    *audit.Recorder // nil records nothing
	// APIKeys checks X-API-Key on /api (and audits each use).
	APIKeys *apikeys.Service
	// DPoP verifies proofs; nil turns DPoP off.
	DPoP *dpop.Verifier
	// Sessions ends login sessions at /oauth2/logout.
	Sessions Sessions
	// RefreshReplay seals token responses kept for the refresh reuse
	// interval; nil turns the interval off.
	RefreshReplay *keys.Sealer
	// Failures limits failed credentials across instances; nil turns the
	// limits off.
	Failures *ratelimit.Failures
	// Resources are the resource servers (RFC 8707); nil knows none.
	Resources *resources.Registry
	// Clients serves the clients and authorizations API under /api; nil
	// serves neither.
	Clients APIRoutes
	// Registration builds dynamic client registration around the
	// server's per-address limit; nil serves no registration.
	Registration func(perIP echo.MiddlewareFunc) RegistrationRoutes
}

// Server is the HTTP server.
type Server struct {
	opt     Options
	store   Store
	oauth   *fosite.Fosite
	keys    *keys.Manager
	hasher  *secret.Hasher
	scopes  *scopes.Registry
	appr    *approval.Service
	log     *slog.Logger
	now     func() time.Time
	dpop    *dpop.Verifier
	replay  *keys.Sealer
	secure  bool
	echo    *echo.Echo
	admin   *echo.Echo // the same router as echo unless SeparateAdmin
	metrics *httpMetrics
	limits  *limiters
	audit   *audit.Recorder
	apiKeys *apikeys.Service
	// outageLogged is when a database outage was last logged (outage.go).
	outageLogged atomic.Int64
	// resources are the resource servers tokens may be issued for.
	resources *resources.Registry
	// sessions ends login sessions (sign-out).
	sessions Sessions
}

// New builds the server and its routes.
func New(opt Options, d Deps) *Server {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Metrics == nil {
		d.Metrics = prometheus.NewRegistry()
	}
	s := &Server{
		opt: opt, store: d.Store, oauth: d.OAuth, keys: d.Keys, hasher: d.Hasher, scopes: d.Scopes,
		appr: d.Approval, log: d.Logger, now: d.Now, audit: d.Audit, dpop: d.DPoP, resources: d.Resources, replay: d.RefreshReplay, sessions: d.Sessions,
		secure:  strings.HasPrefix(opt.Issuer, "https://"),
		apiKeys: d.APIKeys,
	}
	s.metrics = newHTTPMetrics(d.Metrics, func() []*echo.Echo {
		if s.admin == s.echo {
			return []*echo.Echo{s.echo}
		}
		return []*echo.Echo{s.echo, s.admin}
	})
	s.limits = newLimiters(opt.Limits, d.Failures, d.Now, d.Metrics)
	e := s.newRouter()
	admin := e
	if opt.SeparateAdmin {
		// Separate routers, not a path filter in front of one: a route
		// that is not registered cannot be reached by any path spelling.
		admin = s.newRouter()
	}

	e.GET(endpoint.OpenIDConfiguration, s.discovery, publicCORS)
	e.GET(endpoint.AuthorizationServerMetadata, s.discovery, publicCORS)
	e.GET(endpoint.JWKS, s.jwks, publicCORS)
	// Anonymous requests that store something are limited per address;
	// client-authenticated ones are refused while the sender or the client
	// is locked out by failed credentials (SPEC §7).
	authorizeLimit := s.perIP(s.limits.authorize, limitAuthorize)
	e.GET(endpoint.Authorize, s.authorize, authorizeLimit)
	e.POST(endpoint.Authorize, s.authorize, authorizeLimit)
	e.GET(endpoint.AuthorizeResume, s.resume)
	e.POST(endpoint.PAR, s.par, s.perIP(s.limits.par, limitPAR), s.credentialGate)
	// CORS outermost, so a page can read even a 429 (cors.go).
	e.POST(endpoint.Token, s.token, s.clientCORS, s.credentialGate)
	e.OPTIONS(endpoint.Token, s.preflight(http.MethodPost))
	e.POST(endpoint.Revoke, s.revoke, s.clientCORS, s.credentialGate)
	e.OPTIONS(endpoint.Revoke, s.preflight(http.MethodPost))
	e.POST(endpoint.Introspect, s.introspect, s.credentialGate)
	e.GET(endpoint.Userinfo, s.userinfo)
	e.POST(endpoint.Userinfo, s.userinfo)
	e.GET(endpoint.Logout, s.logout)
	e.POST(endpoint.Logout, s.logout)
	e.OPTIONS(endpoint.Userinfo, s.preflight("GET, POST"))
	e.GET(endpoint.Alive, s.alive)
	e.GET(endpoint.Ready, s.ready)
	admin.GET(endpoint.Metrics, echo.WrapHandler(promhttp.HandlerFor(d.Metrics, promhttp.HandlerOpts{})))
	s.mountAPI(e, admin, d)
	switch {
	case opt.ApprovalURL != "":
	case config.LoopbackIssuer(opt.Issuer):
		s.appr.RegisterDevPage(e)
	default:
		// Configuration validation refuses this; an embedder that skipped
		// it still never gets a page that approves anyone as anyone on a
		// public issuer (SPEC §1).
		s.log.Error("no approval_url and the issuer is not a loopback address: the development consent page is not served; set LATCH_APPROVAL_URL", "issuer", opt.Issuer)
	}
	s.echo, s.admin = e, admin
	return s
}

// newRouter is an echo router with the middleware every listener shares.
func (s *Server) newRouter() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true, LogErrorFunc: s.logPanic}))
	e.Use(s.metrics.middleware)
	e.Use(s.accessLog)
	e.Use(s.limitBody)
	e.Use(securityHeaders)
	e.Use(auditContext)
	return e
}

// AdminEcho is the router serving /metrics and /api: the public one unless
// SeparateAdmin is set.
func (s *Server) AdminEcho() *echo.Echo { return s.admin }

// AdminHTTPServer is HTTPServer for the admin listener; nil unless
// SeparateAdmin is set (the public server serves everything then).
func (s *Server) AdminHTTPServer(addr string) *http.Server {
	if !s.opt.SeparateAdmin {
		return nil
	}
	hs := s.HTTPServer(addr)
	hs.Handler = s.admin
	return hs
}

// Handler is the server's http.Handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.echo }

// Echo exposes the router so other packages can mount routes.
func (s *Server) Echo() *echo.Echo { return s.echo }

// HTTPServer wraps the handler with the configured timeouts; a slow client
// can hold a connection only as long as they allow.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.echo,
		ReadTimeout:       s.opt.ReadTimeout,
		ReadHeaderTimeout: s.opt.ReadHeaderTimeout,
		WriteTimeout:      s.opt.WriteTimeout,
		IdleTimeout:       s.opt.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
}

// handleError renders every error that reaches echo: our REST errors as
// {"error","error_description"}, echo's own (404 route, 405) likewise, and
// anything else as an opaque 500 whose cause is logged, never sent.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var (
		ae *apierror.Error
		he *echo.HTTPError
	)
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &he):
		ae = &apierror.Error{Status: he.Code, Code: httpCode(he.Code), Description: strings.ToLower(http.StatusText(he.Code))}
		if m, ok := he.Message.(string); ok && he.Code < 500 {
			ae.Description = m
		}
	default:
		ae = apierror.Internal(err)
	}
	if ae.Status >= 500 {
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "err", ae)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	_ = c.JSON(ae.Status, map[string]string{"error": ae.Code, "error_description": ae.Description})
}

func httpCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestEntityTooLarge:
		return "invalid_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	}
	if status >= 500 {
		return "server_error"
	}
	return "invalid_request"
}

func (s *Server) logPanic(c echo.Context, err error, stack []byte) error {
	s.log.Error("panic", "path", c.Path(), "err", err, "stack", string(stack))
	return err
}

// accessLog logs the route, never the raw URL: query strings can carry
// codes, states and session ids.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		s.log.Debug("http", "method", c.Request().Method, "route", c.Path(),
			"status", c.Response().Status, "dur_ms", time.Since(start).Milliseconds())
		return nil
	}
}

func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.opt.MaxBodyBytes > 0 {
			r := c.Request()
			if r.ContentLength > s.opt.MaxBodyBytes {
				return &apierror.Error{Status: http.StatusRequestEntityTooLarge, Code: "invalid_request", Description: "body too large"}
			}
			r.Body = http.MaxBytesReader(c.Response(), r.Body, s.opt.MaxBodyBytes)
		}
		return next(c)
	}
}

// securityHeaders keeps pages out of frames and limits what they may load.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; frame-ancestors 'none'; base-uri 'none'")
		return next(c)
	}
}

// noStore keeps API answers (sessions, secrets) out of caches.
func noStore(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		c.Response().Header().Set("Pragma", "no-cache")
		return next(c)
	}
}

func (s *Server) alive(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) ready(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness: database unreachable", "err", err)
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "database unreachable"})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) listScopes(c echo.Context) error {
	return c.JSON(http.StatusOK, s.scopes.All())
}

// httpMetrics counts requests by route and status. Every label comes from
// a closed set (route template, standard method or "other", status class):
// a label taken from the request itself would let anyone create new time
// series, each held in memory forever (SPEC §7).
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// routes are the templates of the registered routes, read from the
	// router at the first request, when every package has mounted its own.
	routes func() map[string]bool
}

// unmatchedRoute labels every request that matched no route.
const unmatchedRoute = "unmatched"

// routers are read once, at the first request, once every route is mounted.
func newHTTPMetrics(reg prometheus.Registerer, routers func() []*echo.Echo) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_http_requests_total", Help: "HTTP requests by route template, method (standard ones, else other) and status class.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "latch_http_request_duration_seconds", Help: "HTTP request latency by route template.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		routes: sync.OnceValue(func() map[string]bool {
			known := map[string]bool{}
			for _, e := range routers() {
				for _, r := range e.Routes() {
					// Group catch-alls (echo's 404 routes) are not routes.
					if r.Method != echo.RouteNotFound {
						known[r.Path] = true
					}
				}
			}
			return known
		}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *httpMetrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if !m.routes()[route] {
			route = unmatchedRoute
		}
		m.requests.WithLabelValues(route, methodLabel(c.Request().Method), statusClass(c.Response().Status)).Inc()
		m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		return nil
	}
}

// methodLabel maps the request method onto a closed set.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "other"
}

// statusClass is "2xx", "4xx" and so on.
func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}
