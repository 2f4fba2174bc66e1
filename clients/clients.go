// Package clients registers and manages OAuth clients: it validates RFC 7591
// metadata, generates ids and secrets, and keeps only the secret's hash.
package clients

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v3"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/provider"
	"github.com/latchhq/latch/scopes"
	"github.com/latchhq/latch/secret"
	"github.com/latchhq/latch/storage"
)

// Service creates and manages clients.
type Service struct {
	store  ManageStore
	hasher *secret.Hasher
	scopes *scopes.Registry
	audit  *audit.Recorder
	// audience says whether a client may name a value in its audience.
	audience func(string) bool
	// allowLoopback accepts loopback http back-channel logout URIs.
	allowLoopback bool
}

// New builds the service. audience accepts the values a client's
// audience may hold: the issuer and registered resources (SPEC §4); nil
// accepts none. It matters because a token's audience decides who may
// introspect and accept it: a client naming another client's id, or
// another API, would mint tokens for them.
func New(store ManageStore, hasher *secret.Hasher, reg *scopes.Registry, audience func(string) bool) *Service {
	return &Service{store: store, hasher: hasher, scopes: reg, audience: audience}
}

// WithAudit makes the service record what it changes.
func (s *Service) WithAudit(r *audit.Recorder) *Service {
	c := *s
	c.audit = r
	return &c
}

// WithLoopbackOutbound accepts http://127.0.0.1 back-channel logout URIs,
// for when outbound requests may reach loopback (tests only).
func (s *Service) WithLoopbackOutbound(allow bool) *Service {
	c := *s
	c.allowLoopback = allow
	return &c
}

// Metadata is the RFC 7591 registration request (plus owner).
type Metadata struct {
	ClientID                string   `json:"client_id,omitempty"`
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scope                   string   `json:"scope"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	JWKS                    string   `json:"-"`
	JWKSURI                 string   `json:"jwks_uri"`
	LogoURI                 string   `json:"logo_uri"`
	ClientURI               string   `json:"client_uri"`
	PolicyURI               string   `json:"policy_uri"`
	TOSURI                  string   `json:"tos_uri"`
	Contacts                []string `json:"contacts"`
	Owner                   string   `json:"owner"`
	Audience                []string `json:"audience"`
	// IDTokenSignedResponseAlg picks the ID token algorithm (OIDC
	// Registration §2); empty means the server's default.
	IDTokenSignedResponseAlg string `json:"id_token_signed_response_alg"`
	// TokenEndpointAuthSigningAlg pins the private_key_jwt assertion
	// algorithm (RFC 7591 §2); empty derives it from the client's keys.
	TokenEndpointAuthSigningAlg string `json:"token_endpoint_auth_signing_alg"`
	// DPoPBoundAccessTokens refuses this client tokens without a DPoP
	// proof (RFC 9449 §5.2).
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens"`
	// RequirePushedAuthRequests refuses this client authorization requests
	// that were not pushed first (RFC 9126 §6).
	RequirePushedAuthRequests bool `json:"require_pushed_authorization_requests"`
	// PostLogoutRedirectURIs are where /oauth2/logout may send the browser
	// back (RP-Initiated Logout 1.0), compared exactly.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	// BackchannelLogoutURI receives logout tokens (Back-Channel Logout
	// 1.0); BackchannelLogoutSessionRequired asks for sid in them.
	BackchannelLogoutURI             string `json:"backchannel_logout_uri"`
	BackchannelLogoutSessionRequired bool   `json:"backchannel_logout_session_required"`
	// AllowedCORSOrigins are the exact browser origins that may call the
	// token, revocation and userinfo endpoints as this client.
	AllowedCORSOrigins []string `json:"allowed_cors_origins"`
	// ApplicationType is "web" or "native" (OpenID Connect Registration
	// §2); empty infers it from the redirect URIs.
	ApplicationType string `json:"application_type"`
	// RefreshReuseInterval (seconds) overrides the server's refresh reuse
	// interval for this client; 0 keeps the server's.
	RefreshReuseInterval int `json:"refresh_reuse_interval"`
}

// InvalidError names the metadata field at fault (RFC 7591 §3.2.2 codes).
type InvalidError struct {
	Code  string // invalid_redirect_uri or invalid_client_metadata
	Field string
	Msg   string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Msg }

func invalid(field, format string, args ...any) error {
	code := "invalid_client_metadata"
	if field == "redirect_uris" {
		code = "invalid_redirect_uri"
	}
	return &InvalidError{Code: code, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Create validates m, stores the client and returns it with its secret in
// plaintext (empty for public and private_key_jwt clients). The secret is
// never retrievable again.
func (s *Service) Create(ctx context.Context, m Metadata) (*storage.Client, string, error) {
	return s.create(ctx, m, nil)
}

// CreateDynamic is Create for a client registering itself (RFC 7591): it
// is marked dynamic and keeps the hash of its registration access token.
func (s *Service) CreateDynamic(ctx context.Context, m Metadata, registrationTokenHash string) (*storage.Client, string, error) {
	return s.create(ctx, m, func(c *storage.Client) {
		c.Dynamic, c.RegistrationTokenHash = true, registrationTokenHash
	})
}

func (s *Service) create(ctx context.Context, m Metadata, mark func(*storage.Client)) (*storage.Client, string, error) {
	c, err := s.Build(m)
	if err != nil {
		return nil, "", err
	}
	if mark != nil {
		mark(c)
	}
	plain := ""
	if !c.Public && c.TokenEndpointAuthMethod != "private_key_jwt" {
		plain = secret.New()
		h, _ := s.hasher.Hash(ctx, []byte(plain))
		c.SecretHash = string(h)
	}
	if err := s.store.CreateClient(ctx, c); err != nil {
		return nil, "", err
	}
	s.audit.Record(ctx, audit.Event{Name: audit.ClientCreated, ClientID: c.ID, Details: clientDetails(c)})
	return c, plain, nil
}

// Build validates metadata and fills defaults, without storing anything.
func (s *Service) Build(m Metadata) (*storage.Client, error) {
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = "client_secret_basic"
	}
	if !slices.Contains(provider.TokenEndpointAuthMethods, m.TokenEndpointAuthMethod) {
		return nil, invalid("token_endpoint_auth_method", "must be one of %s", strings.Join(provider.TokenEndpointAuthMethods, ", "))
	}
	if m.GrantTypes == nil {
		m.GrantTypes = []string{provider.GrantAuthorizationCode}
	}
	if len(m.GrantTypes) == 0 {
		return nil, invalid("grant_types", "at least one grant type is required")
	}
	if m.ResponseTypes == nil {
		m.ResponseTypes = []string{}
		if slices.Contains(m.GrantTypes, provider.GrantAuthorizationCode) {
			m.ResponseTypes = []string{"code"}
		}
	}
	for _, g := range m.GrantTypes {
		if !slices.Contains(provider.GrantTypes, g) {
			return nil, invalid("grant_types", "%q is not supported (%s)", g, strings.Join(provider.GrantTypes, ", "))
		}
	}
	for _, r := range m.ResponseTypes {
		if !slices.Contains(provider.ResponseTypes, r) {
			return nil, invalid("response_types", "%q is not supported (%s)", r, strings.Join(provider.ResponseTypes, ", "))
		}
	}
	hasCode := slices.Contains(m.GrantTypes, provider.GrantAuthorizationCode)
	if hasCode != slices.Contains(m.ResponseTypes, "code") {
		return nil, invalid("response_types", "response type code goes with grant type authorization_code, and only with it")
	}
	if slices.Contains(m.GrantTypes, provider.GrantRefreshToken) && !hasCode {
		return nil, invalid("grant_types", "refresh_token goes with authorization_code (client_credentials clients ask for a new token instead)")
	}
	public := m.TokenEndpointAuthMethod == "none"
	if public && slices.Contains(m.GrantTypes, provider.GrantClientCredentials) {
		return nil, invalid("grant_types", "client_credentials needs a confidential client")
	}
	if m.TokenEndpointAuthMethod == "private_key_jwt" && m.JWKS == "" && m.JWKSURI == "" {
		return nil, invalid("jwks", "private_key_jwt needs jwks or jwks_uri")
	}
	if m.JWKS != "" && m.JWKSURI != "" {
		return nil, invalid("jwks", "give jwks or jwks_uri, not both (RFC 7591 §2)")
	}
	if err := checkJWKS(m.JWKS); err != nil {
		return nil, err
	}
	if err := checkAlgs(m); err != nil {
		return nil, err
	}
	if hasCode && len(m.RedirectURIs) == 0 {
		return nil, invalid("redirect_uris", "at least one is required for authorization_code")
	}
	if !hasCode && len(m.RedirectURIs) > 0 {
		return nil, invalid("redirect_uris", "only clients using authorization_code have redirect URIs")
	}
	for _, u := range m.RedirectURIs {
		if err := checkRedirectURI("redirect_uris", u); err != nil {
			return nil, err
		}
	}
	if len(m.PostLogoutRedirectURIs) > 20 {
		return nil, invalid("post_logout_redirect_uris", "at most 20")
	}
	for _, u := range m.PostLogoutRedirectURIs {
		if err := checkRedirectURI("post_logout_redirect_uris", u); err != nil {
			return nil, err
		}
	}
	if err := s.checkBackchannelURI(m.BackchannelLogoutURI); err != nil {
		return nil, err
	}
	appType, err := applicationType(m.ApplicationType, m.RedirectURIs)
	if err != nil {
		return nil, err
	}
	if err := checkCORSOrigins(m.AllowedCORSOrigins); err != nil {
		return nil, err
	}
	if m.RefreshReuseInterval < 0 || m.RefreshReuseInterval > MaxRefreshReuseInterval {
		return nil, invalid("refresh_reuse_interval", "must be between 0 and %d seconds", MaxRefreshReuseInterval)
	}
	scopeList := strings.Fields(m.Scope)
	if m.Scope == "" {
		scopeList = s.scopes.Names()
	}
	if err := s.scopes.Check(scopeList); err != nil {
		return nil, invalid("scope", "%v", err)
	}
	for field, v := range map[string]string{"logo_uri": m.LogoURI, "client_uri": m.ClientURI, "policy_uri": m.PolicyURI, "tos_uri": m.TOSURI, "jwks_uri": m.JWKSURI} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, invalid(field, "must be an absolute https URL")
		}
	}
	if len(m.ClientName) > 200 {
		return nil, invalid("client_name", "must be at most 200 characters")
	}
	if err := checkContacts(m.Contacts); err != nil {
		return nil, err
	}
	if err := s.checkAudience(m.Audience); err != nil {
		return nil, err
	}
	if len(m.Owner) > 255 {
		return nil, invalid("owner", "must be at most 255 characters")
	}
	if m.ClientID != "" && !clientIDPattern.MatchString(m.ClientID) {
		return nil, invalid("client_id", "must be 1 to 100 characters from A-Z a-z 0-9 . _ ~ -")
	}
	id := m.ClientID
	if id == "" {
		id = secret.ID(16)
	}
	return &storage.Client{
		ID: id, Public: public, Name: m.ClientName, RedirectURIs: m.RedirectURIs,
		GrantTypes: m.GrantTypes, ResponseTypes: m.ResponseTypes, Scope: strings.Join(scopeList, " "),
		Audience: m.Audience, TokenEndpointAuthMethod: m.TokenEndpointAuthMethod, JWKS: m.JWKS, JWKSURI: m.JWKSURI,
		LogoURI: m.LogoURI, ClientURI: m.ClientURI, PolicyURI: m.PolicyURI, TOSURI: m.TOSURI,
		Contacts: m.Contacts, Owner: m.Owner, IDTokenSignedResponseAlg: m.IDTokenSignedResponseAlg,
		TokenEndpointAuthSigningAlg: m.TokenEndpointAuthSigningAlg, DPoPBoundAccessTokens: m.DPoPBoundAccessTokens,
		RequirePushedAuthRequests: m.RequirePushedAuthRequests, PostLogoutRedirectURIs: m.PostLogoutRedirectURIs,
		BackchannelLogoutURI: m.BackchannelLogoutURI, BackchannelLogoutSessionRequired: m.BackchannelLogoutSessionRequired,
		AllowedCORSOrigins: m.AllowedCORSOrigins, ApplicationType: appType, RefreshReuseInterval: m.RefreshReuseInterval,
	}, nil
}

// checkRedirectURI allows https, loopback http for native apps (RFC 8252
// §7.3; any port at use time; `localhost` too, which MCP and CLI clients
// use, although RFC 8252 §8.3 prefers IP literals), and private-use
// schemes (§7.1). No fragments, no wildcards.
// The same rules hold for post_logout_redirect_uris (field names which).
func checkRedirectURI(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return invalid(field, "%q is not an absolute URI", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return invalid(field, "%q must not contain a fragment", raw)
	}
	if strings.Contains(raw, "*") {
		return invalid(field, "%q must not contain wildcards", raw)
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return invalid(field, "%q has no host", raw)
		}
	case "http":
		if !storage.IsLoopbackHost(u.Hostname()) {
			return invalid(field, "%q: http is only allowed for loopback addresses", raw)
		}
	default:
		// Private-use schemes are reverse domain names (RFC 8252 §7.1).
		if !strings.Contains(u.Scheme, ".") {
			return invalid(field, "%q: custom schemes must be reverse domain names such as com.example.app", raw)
		}
	}
	return nil
}

// checkBackchannelURI allows an absolute https URL without fragment
// (Back-Channel Logout 1.0 §2.2), and loopback http only where outbound
// fetches may reach loopback (tests, local development): Latch itself
// posts to it, so it must be a place the outbound client may go.
func (s *Service) checkBackchannelURI(raw string) error {
	const field = "backchannel_logout_uri"
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil {
		return invalid(field, "must be an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return invalid(field, "must not contain a fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if s.allowLoopback && storage.IsLoopbackHost(u.Hostname()) {
			return nil
		}
	}
	return invalid(field, "must be an https URL")
}

// MaxRefreshReuseInterval bounds a client's refresh_reuse_interval: the
// interval is for a retry or two racing tabs, not a second credential.
const MaxRefreshReuseInterval = 300

// Application types (OpenID Connect Registration §2).
const (
	AppWeb    = "web"
	AppNative = "native"
)

// applicationType validates the registered application_type against the
// redirect URIs as OpenID Connect Registration §2 says: a native client
// redirects to loopback http or a private-use scheme, a web client to
// https. Without one, the redirect URIs decide (all https: web; all
// loopback or private-use: native); a client that mixes both kinds keeps
// an empty type and the rules it was registered under before the field
// existed, so no existing registration stops validating.
func applicationType(t string, redirects []string) (string, error) {
	web, native := 0, 0
	for _, r := range redirects {
		if strings.HasPrefix(r, "https://") {
			web++
		} else {
			native++
		}
	}
	switch t {
	case AppWeb:
		if native > 0 {
			return "", invalid("redirect_uris", "a web application redirects to https URLs only; register application_type native for loopback or private-use scheme redirects")
		}
	case AppNative:
		if web > 0 {
			return "", invalid("redirect_uris", "a native application redirects to loopback http or private-use scheme URIs only (OpenID Connect Registration §2)")
		}
	case "":
		switch {
		case native == 0:
			return AppWeb, nil
		case web == 0:
			return AppNative, nil
		}
	default:
		return "", invalid("application_type", "must be web or native")
	}
	return t, nil
}

// maxCORSOrigins bounds allowed_cors_origins.
const maxCORSOrigins = 20

// checkCORSOrigins accepts exact origins as browsers send them: https (or
// http on a loopback host), a lowercase host, a port only when it is not
// the default, and nothing else. Anything else could never match an
// Origin header, so it is refused rather than silently useless.
func checkCORSOrigins(origins []string) error {
	if len(origins) > maxCORSOrigins {
		return invalid("allowed_cors_origins", "at most %d origins", maxCORSOrigins)
	}
	for _, o := range origins {
		u, err := url.Parse(o)
		bad := err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
			strings.HasSuffix(o, "/") || strings.Contains(o, "?") || strings.Contains(o, "#") || u.Scheme+"://"+u.Host != o
		if bad {
			return invalid("allowed_cors_origins", "%q is not an origin (scheme://host[:port], no path)", o)
		}
		if u.Host != strings.ToLower(u.Host) || strings.Contains(o, "*") {
			return invalid("allowed_cors_origins", "%q: the host must be lowercase and exact (no wildcards)", o)
		}
		switch {
		case u.Scheme == "https" && u.Port() != "443":
		case u.Scheme == "http" && storage.IsLoopbackHost(u.Hostname()) && u.Port() != "80":
		default:
			return invalid("allowed_cors_origins", "%q: must be https (http only on loopback), without its default port", o)
		}
	}
	return nil
}

// clientIDPattern keeps chosen ids URL- and header-safe (they travel in
// Basic auth, URLs and JWT claims).
var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,100}$`)

// checkJWKS accepts a key set of public keys only: a private key sent here
// would be stored where it does not belong.
func checkJWKS(raw string) error {
	if raw == "" {
		return nil
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(raw), &set); err != nil {
		return invalid("jwks", "must be a JSON Web Key Set object {\"keys\": [...]}: %v", err)
	}
	if len(set.Keys) == 0 {
		return invalid("jwks", "must contain at least one key")
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return invalid("jwks", "key %q is a private key; register only public keys", k.KeyID)
		}
	}
	return nil
}

// checkAlgs holds the algorithm choices to what the server can sign and
// verify: an unsupported one would only surface as a failed login later.
func checkAlgs(m Metadata) error {
	if a := m.IDTokenSignedResponseAlg; a != "" && !slices.Contains(provider.IDTokenSigningAlgs, a) {
		return invalid("id_token_signed_response_alg", "%q is not supported (%s)", a, strings.Join(provider.IDTokenSigningAlgs, ", "))
	}
	a := m.TokenEndpointAuthSigningAlg
	if a == "" {
		return nil
	}
	if m.TokenEndpointAuthMethod != "private_key_jwt" {
		return invalid("token_endpoint_auth_signing_alg", "only applies to token_endpoint_auth_method private_key_jwt")
	}
	if !slices.Contains(provider.ClientAssertionAlgs, a) {
		return invalid("token_endpoint_auth_signing_alg", "%q is not supported (%s)", a, strings.Join(provider.ClientAssertionAlgs, ", "))
	}
	return nil
}

func (s *Service) checkAudience(aud []string) error {
	for _, a := range aud {
		if s.audience == nil || !s.audience(a) {
			return invalid("audience", "%q is neither this server's issuer nor a registered resource", a)
		}
	}
	return nil
}

func checkContacts(contacts []string) error {
	if len(contacts) > 20 {
		return invalid("contacts", "at most 20 contacts")
	}
	for _, c := range contacts {
		if strings.TrimSpace(c) == "" || len(c) > 254 {
			return invalid("contacts", "each contact must be a non-empty string of at most 254 characters")
		}
	}
	return nil
}

// clientDetails is what the audit log keeps about a client: metadata, never
// its secret.
func clientDetails(c *storage.Client) map[string]any {
	return map[string]any{"client_name": c.Name, "owner": c.Owner, "redirect_uris": c.RedirectURIs,
		"grant_types": c.GrantTypes, "scope": c.Scope, "token_endpoint_auth_method": c.TokenEndpointAuthMethod,
		"dpop_bound_access_tokens": c.DPoPBoundAccessTokens, "require_pushed_authorization_requests": c.RequirePushedAuthRequests,
		"post_logout_redirect_uris": c.PostLogoutRedirectURIs, "backchannel_logout_uri": c.BackchannelLogoutURI}
}
