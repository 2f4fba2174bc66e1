// Package resource protects a host app's API with Latch access tokens:
// net/http middleware that verifies JWT access tokens (RFC 9068) against
// Latch's JWKS, or opaque ones by introspection (RFC 7662), checks issuer,
// audience (the configured resource, RFC 8707), lifetime, scopes per route
// and DPoP binding (RFC 9449), answers with RFC 6750 / RFC 9449 challenges
// that point at the RFC 9728 metadata it also serves, and hands the verified
// claims to the handler through the request context.
//
//	v, _ := resource.New(resource.Config{Issuer: "https://login.example", Resource: "https://api.example"})
//	mux.Handle("GET /v1/me", v.Require("profile")(me))
//	mux.Handle(v.MetadataPath(), v.MetadataHandler())
//	...
//	claims, _ := resource.ClaimsFrom(r.Context())
package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Config configures a Verifier.
type Config struct {
	// Issuer is Latch's issuer URL; its JWKS is discovered from it.
	Issuer string
	// Resource is this API's identifier (an absolute URL): tokens must
	// carry it in aud.
	Resource string
	// ResourceName and ScopesSupported are published in the RFC 9728
	// metadata.
	ResourceName    string
	ScopesSupported []string
	// Leeway tolerates clock skew on exp, nbf and DPoP iat (default 30 s).
	Leeway time.Duration
	// JWKSRefetchInterval is the least time between two JWKS fetches caused
	// by an unknown kid (default 1 minute).
	JWKSRefetchInterval time.Duration
	// DPoP configures sender-constrained tokens. DPoP-bound tokens are
	// always checked; Required also refuses bearer tokens.
	DPoP DPoPConfig
	// Introspection, when set, lets opaque (non-JWT) tokens in.
	Introspection *Introspection
	// PublicURL is the API's external base URL (scheme and host), used for
	// DPoP htu when the app sits behind a proxy; default: the request's
	// own scheme and Host.
	PublicURL string
	// HTTPClient fetches discovery, JWKS and introspection (default: 10 s
	// timeout).
	HTTPClient *http.Client
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// DPoPConfig configures proof checks.
type DPoPConfig struct {
	// Required refuses tokens that are not DPoP-bound.
	Required bool
	// ProofWindow is how far a proof's iat may be from now (default 60 s,
	// plus Leeway); its jti is remembered for that long.
	ProofWindow time.Duration
	// ReplayCacheSize caps the remembered jtis (default 100,000); when
	// full, proofs are refused rather than replay protection weakened.
	ReplayCacheSize int
}

// Introspection is how opaque tokens are checked (RFC 7662).
type Introspection struct {
	// ClientID and ClientSecret authenticate the API to Latch as a client
	// named in the tokens' audience; or APIKey as the host app.
	ClientID, ClientSecret string
	APIKey                 string
	// CacheTTL keeps an answer this long (default 30 s, never past the
	// token's exp); 0 keeps the default, negative disables.
	CacheTTL time.Duration
}

// Verifier checks tokens for one resource.
type Verifier struct {
	cfg    Config
	keys   *keySet
	replay *replayCache
	intro  *introCache
	now    func() time.Time
}

// New makes a Verifier. It contacts nobody: discovery happens on the first
// request and is retried until it works.
func New(cfg Config) (*Verifier, error) {
	if u, err := url.Parse(cfg.Issuer); err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("resource: issuer %q is not an absolute URL", cfg.Issuer)
	}
	if u, err := url.Parse(cfg.Resource); err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" {
		return nil, fmt.Errorf("resource: resource %q must be an absolute URL without fragment", cfg.Resource)
	}
	cfg.Issuer = strings.TrimRight(cfg.Issuer, "/")
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.JWKSRefetchInterval == 0 {
		cfg.JWKSRefetchInterval = time.Minute
	}
	if cfg.DPoP.ProofWindow == 0 {
		cfg.DPoP.ProofWindow = time.Minute
	}
	if cfg.DPoP.ReplayCacheSize == 0 {
		cfg.DPoP.ReplayCacheSize = 100_000
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	v := &Verifier{
		cfg:    cfg,
		keys:   &keySet{hc: cfg.HTTPClient, issuer: cfg.Issuer, now: now, interval: cfg.JWKSRefetchInterval},
		replay: &replayCache{max: cfg.DPoP.ReplayCacheSize, seen: map[string]time.Time{}},
		now:    now,
	}
	if in := cfg.Introspection; in != nil {
		if in.APIKey == "" && in.ClientID == "" {
			return nil, errors.New("resource: introspection needs a client id or an API key")
		}
		ttl := in.CacheTTL
		if ttl == 0 {
			ttl = 30 * time.Second
		}
		v.intro = &introCache{ttl: ttl, entries: map[[32]byte]introEntry{}}
	}
	return v, nil
}

// Claims are a verified token's claims.
type Claims struct {
	Issuer   string
	Subject  string
	Audience []string
	ClientID string
	Scopes   []string
	Expiry   time.Time
	IssuedAt time.Time
	AuthTime time.Time
	JTI      string
	// JKT is the DPoP key thumbprint the token is bound to ("" = bearer).
	JKT string
	// Raw holds every claim as sent (access_token_claims included);
	// numbers are json.Number.
	Raw map[string]any

	notBefore time.Time
}

// HasScope reports whether the token carries scope.
func (c *Claims) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

type claimsKey struct{}

// ClaimsFrom returns the claims Require verified for this request.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// Require is middleware that lets a request through only with a valid
// token carrying every one of scopes.
func (v *Verifier) Require(scopes ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := v.Verify(r)
			if err == nil {
				var missing []string
				for _, s := range scopes {
					if !c.HasScope(s) {
						missing = append(missing, s)
					}
				}
				if len(missing) > 0 {
					err = &Error{Status: http.StatusForbidden, Code: "insufficient_scope", Description: "the token lacks a required scope", Scope: strings.Join(scopes, " "), scheme: schemeOf(c)}
				}
			}
			if err != nil {
				v.WriteError(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
		})
	}
}

func schemeOf(c *Claims) string {
	if c.JKT != "" {
		return "DPoP"
	}
	return "Bearer"
}

// Error is a refused request; WriteError renders it.
type Error struct {
	Status      int
	Code        string // invalid_request, invalid_token, insufficient_scope, invalid_dpop_proof; "" when no credentials were sent
	Description string
	Scope       string // for insufficient_scope
	scheme      string // the challenge that carries the error
	cause       error
}

func (e *Error) Error() string {
	msg := "resource: " + e.Code
	if e.Code == "" {
		msg = "resource: no access token"
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.cause }

func invalidToken(scheme, desc string, cause error) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: desc, scheme: scheme, cause: cause}
}

func invalidProof(desc string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "invalid_dpop_proof", Description: desc, scheme: "DPoP"}
}

// WriteError answers a refused request with the status, the
// WWW-Authenticate challenges (RFC 6750 §3, RFC 9449 §7.1, with RFC 9728
// resource_metadata) and a JSON body.
func (v *Verifier) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		// Latch or the network failed us, not the caller: a 503 tells a
		// client to retry instead of throwing its token away.
		e = &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "the token cannot be checked right now"}
	}
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden || e.Status == http.StatusBadRequest {
		params := func(scheme string) string {
			var p []string
			// The error rides on the challenge of the scheme it concerns;
			// when DPoP is required that is the only challenge sent.
			if e.Code != "" && (e.scheme == scheme || e.scheme == "" || v.cfg.DPoP.Required) {
				p = append(p, `error="`+e.Code+`"`)
				if e.Description != "" {
					p = append(p, `error_description="`+quote(e.Description)+`"`)
				}
				if e.Scope != "" {
					p = append(p, `scope="`+quote(e.Scope)+`"`)
				}
			}
			if scheme == "DPoP" {
				p = append(p, `algs="ES256 ES384 ES512 RS256 RS384 RS512 PS256 PS384 PS512 EdDSA"`)
			}
			p = append(p, `resource_metadata="`+quote(v.MetadataURL())+`"`)
			return scheme + " " + strings.Join(p, ", ")
		}
		if !v.cfg.DPoP.Required {
			w.Header().Add("WWW-Authenticate", params("Bearer"))
		}
		w.Header().Add("WWW-Authenticate", params("DPoP"))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	code := e.Code
	if code == "" {
		code = "invalid_token"
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": e.Description})
}

// quote keeps a value safe inside a quoted-string.
func quote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", " ", "\n", " ").Replace(s)
}

// Verify checks the request's token (and DPoP proof) and returns its
// claims; it does not check scopes. Errors are *Error unless Latch could
// not be reached.
func (v *Verifier) Verify(r *http.Request) (*Claims, error) {
	scheme, token, err := ParseAuthorization(r.Header.Values("Authorization"))
	if err != nil {
		return nil, err
	}
	var c *Claims
	if strings.Count(token, ".") == 2 {
		c, err = v.verifyJWT(r.Context(), scheme, token)
	} else {
		c, err = v.introspect(r.Context(), scheme, token)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case c.JKT == "" && scheme == "DPoP":
		return nil, invalidToken("DPoP", "the token is not DPoP-bound", nil)
	case c.JKT == "" && v.cfg.DPoP.Required:
		return nil, invalidToken("DPoP", "a DPoP-bound token is required", nil)
	case c.JKT != "" && scheme != "DPoP":
		// RFC 9449 §7.2: a bound token sent as a bearer token is refused,
		// or anyone who copied it could use it without the key.
		return nil, invalidToken("DPoP", "a DPoP-bound token must be sent with the DPoP scheme and a proof", nil)
	case c.JKT != "":
		if err := v.checkProof(r, token, c.JKT); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// maxToken bounds work on hostile input.
const maxToken = 16 << 10

// ParseAuthorization reads the one Authorization header's scheme (Bearer
// or DPoP, case-insensitive) and token68. No header is an Error with an
// empty Code (a bare challenge, RFC 6750 §3.1).
func ParseAuthorization(values []string) (scheme, token string, err error) {
	switch {
	case len(values) == 0 || len(values) == 1 && strings.TrimSpace(values[0]) == "":
		return "", "", &Error{Status: http.StatusUnauthorized, Description: "an access token is required"}
	case len(values) > 1:
		return "", "", &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "more than one Authorization header"}
	}
	h := values[0]
	sp := strings.IndexByte(h, ' ')
	if sp < 0 {
		return "", "", &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "the Authorization header must be \"Bearer <token>\" or \"DPoP <token>\""}
	}
	switch strings.ToLower(h[:sp]) {
	case "bearer":
		scheme = "Bearer"
	case "dpop":
		scheme = "DPoP"
	default:
		return "", "", &Error{Status: http.StatusUnauthorized, Description: "unsupported authorization scheme"}
	}
	token = strings.TrimLeft(h[sp+1:], " ")
	if token == "" || len(token) > maxToken || !isToken68(token) {
		return "", "", &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: "malformed access token", scheme: scheme}
	}
	return scheme, token, nil
}

// isToken68 is RFC 7235's token68: [A-Za-z0-9-._~+/]+ =*.
func isToken68(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0 {
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// tokenAlgs are what Latch signs access tokens with (and common peers).
var tokenAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.EdDSA}

func (v *Verifier) verifyJWT(ctx context.Context, scheme, token string) (*Claims, error) {
	jws, err := jose.ParseSigned(token, tokenAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, invalidToken(scheme, "malformed token", err)
	}
	h := jws.Signatures[0].Header
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if t := strings.ToLower(typ); t != "at+jwt" && t != "application/at+jwt" {
		// RFC 9068 §4: the typ keeps an ID token (same issuer, same keys)
		// from passing as an access token.
		return nil, invalidToken(scheme, "not an access token (typ must be at+jwt)", nil)
	}
	key, err := v.keys.key(ctx, h.KeyID)
	if errors.Is(err, errUnknownKey) {
		return nil, invalidToken(scheme, "token signed by an unknown key", err)
	}
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, invalidToken(scheme, "bad signature", err)
	}
	raw := map[string]any{}
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, invalidToken(scheme, "malformed claims", err)
	}
	c, err := claimsFrom(raw)
	if err != nil {
		return nil, invalidToken(scheme, err.Error(), nil)
	}
	if err := v.checkClaims(c, true); err != nil {
		return nil, invalidToken(scheme, err.Error(), nil)
	}
	return c, nil
}

// checkClaims applies the RFC 9068 §4 rules common to JWTs and
// introspection answers.
func (v *Verifier) checkClaims(c *Claims, jwt bool) error {
	now := v.now()
	switch {
	case c.Issuer != v.cfg.Issuer && (jwt || c.Issuer != ""):
		return fmt.Errorf("issued by %q, not %q", c.Issuer, v.cfg.Issuer)
	case !slices.Contains(c.Audience, v.cfg.Resource):
		return errors.New("the token is not for this resource (aud)")
	case jwt && c.Expiry.IsZero():
		return errors.New("the token has no exp")
	case !c.Expiry.IsZero() && !now.Before(c.Expiry.Add(v.cfg.Leeway)):
		return errors.New("the token has expired")
	case c.notBefore.After(now.Add(v.cfg.Leeway)):
		return errors.New("the token is not valid yet (nbf)")
	case jwt && c.Subject == "":
		return errors.New("the token has no sub")
	}
	return nil
}
