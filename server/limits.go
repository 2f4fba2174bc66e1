package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchhq/latch/apierror"
	"github.com/latchhq/latch/ratelimit"
)

// Limits are the per-address request rates of SPEC §7, kept in this
// instance's memory; 0 turns one off. Failed-credential limits are shared
// through the database (Deps.Failures).
type Limits struct {
	AuthorizePerMinute    int
	PARPerMinute          int
	RegistrationPerMinute int
	// TrackedIPs bounds the addresses each limiter remembers.
	TrackedIPs int
}

// limiters holds the abuse limits and counts what they refuse.
type limiters struct {
	authorize    *ratelimit.Limiter
	par          *ratelimit.Limiter
	registration *ratelimit.Limiter
	failures     *ratelimit.Failures
	refused      *prometheus.CounterVec
}

// Names of the limits, the closed label set of latch_rate_limited_total.
const (
	limitAuthorize    = "authorize"
	limitPAR          = "par"
	limitRegistration = "registration"
	limitCredentials  = "failed_credentials"
)

func newLimiters(l Limits, failures *ratelimit.Failures, now func() time.Time, reg prometheus.Registerer) *limiters {
	lim := &limiters{
		authorize:    ratelimit.NewLimiter(l.AuthorizePerMinute, l.TrackedIPs, now),
		par:          ratelimit.NewLimiter(l.PARPerMinute, l.TrackedIPs, now),
		registration: ratelimit.NewLimiter(l.RegistrationPerMinute, l.TrackedIPs, now),
		failures:     failures,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_rate_limited_total", Help: "Requests refused with 429 by limit (authorize, par, registration, failed_credentials).",
		}, []string{"limit"}),
	}
	reg.MustRegister(lim.refused)
	return lim
}

// perIP refuses requests beyond l's rate from one client address. Pages a
// browser opens get a short HTML page, everything else JSON.
func (s *Server) perIP(l *ratelimit.Limiter, name string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if l == nil {
			return next
		}
		return func(c echo.Context) error {
			if wait, ok := l.Allow(ratelimit.ClientIP(c.Request())); !ok {
				return s.rateLimited(c, name, wait, "Too many requests from this address; retry later.")
			}
			return next(c)
		}
	}
}

// RegistrationLimit is the per-address limit for dynamic client
// registration, for the package that mounts that endpoint.
func (s *Server) RegistrationLimit() echo.MiddlewareFunc {
	return s.perIP(s.limits.registration, limitRegistration)
}

// credentialGate refuses, before any credential is checked, requests from
// an address or for a client id locked out by failed credentials. A correct
// credential is refused too: otherwise guessing would go on behind the
// refusals.
func (s *Server) credentialGate(next echo.HandlerFunc) echo.HandlerFunc {
	if s.limits.failures == nil {
		return next
	}
	return func(c echo.Context) error {
		r := c.Request()
		if err := r.ParseForm(); err != nil {
			// Parsed here first, so the handler would see an empty form
			// instead of this error: answer as it would.
			return &apierror.Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "The request body could not be parsed."}
		}
		id, _ := presentedClient(r)
		if wait, locked := s.limits.failures.Locked(r.Context(), ratelimit.ClientIP(r), id); locked {
			return s.rateLimited(c, limitCredentials, wait, "Too many failed client authentications; retry later.")
		}
		return next(c)
	}
}

// credentialFailed counts a failed client authentication against the
// sender's address and the client id it named, when it presented a
// credential at all.
func (s *Server) credentialFailed(c echo.Context) {
	if s.limits.failures == nil {
		return
	}
	r := c.Request()
	if id, presented := presentedClient(r); presented {
		s.limits.failures.Failed(r.Context(), ratelimit.ClientIP(r), id)
	}
}

// presentedClient returns the client id a request names (Basic user, the
// client_id parameter, or a client assertion's subject) and whether it
// carries a credential (a secret or an assertion). The form must have
// been parsed.
func presentedClient(r *http.Request) (string, bool) {
	if user, _, ok := r.BasicAuth(); ok {
		if id, err := url.QueryUnescape(user); err == nil {
			return id, true
		}
		return user, true
	}
	if a := r.PostForm.Get("client_assertion"); a != "" {
		if id := r.PostForm.Get("client_id"); id != "" {
			return id, true
		}
		return assertionSubject(a), true
	}
	return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret") != ""
}

// assertionSubject reads the sub claim (RFC 7523: the client id) of a
// client assertion without verifying it: it only names the counter a
// failure goes to.
func assertionSubject(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(raw, &claims) != nil {
		return ""
	}
	return claims.Sub
}

var rateLimitedPage = template.Must(template.New("429").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Too many requests</title></head>
<body style="font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem">
<h1>Too many requests</h1><p>Please wait {{.}} seconds and try again.</p></body></html>`))

// rateLimited answers 429 with Retry-After: JSON {"error":"rate_limited"}
// for clients, a short page for browsers at the authorization endpoint.
func (s *Server) rateLimited(c echo.Context, limit string, wait time.Duration, desc string) error {
	s.limits.refused.WithLabelValues(limit).Inc()
	secs := int(math.Ceil(wait.Seconds()))
	secs = max(secs, 1)
	h := c.Response().Header()
	h.Set("Retry-After", strconv.Itoa(secs))
	h.Set("Cache-Control", "no-store")
	if limit == limitAuthorize && strings.Contains(c.Request().Header.Get("Accept"), "text/html") {
		h.Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
		c.Response().WriteHeader(http.StatusTooManyRequests)
		if err := rateLimitedPage.Execute(c.Response(), secs); err != nil {
			return fmt.Errorf("render 429 page: %w", err)
		}
		return nil
	}
	return &apierror.Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Description: desc}
}
