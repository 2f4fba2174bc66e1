// Package endpoint spells every path Latch serves, once. The route table,
// discovery, DPoP's htu check, the provider's token URL, approval's resume
// link, the CLI and the test harness read them here, so a route and what
// anyone is told about it cannot drift apart. It imports nothing of
// Latch's, so every package may import it.
//
// The paths themselves are part of the product contract (SPEC §2, §4):
// tests that check that contract compare against the spelled-out path, not
// against these constants.
package endpoint

// OAuth 2.1 and OpenID Connect endpoints.
const (
	Authorize = "/oauth2/authorize"
	// AuthorizeResume is where the browser comes back after the host
	// app's decision.
	AuthorizeResume = "/oauth2/authorize/resume"
	// PAR is the pushed authorization request endpoint (RFC 9126).
	PAR        = "/oauth2/par"
	Token      = "/oauth2/token"
	Revoke     = "/oauth2/revoke"
	Introspect = "/oauth2/introspect"
	Userinfo   = "/userinfo"
	// Logout is the end_session_endpoint (RP-Initiated Logout 1.0).
	Logout = "/oauth2/logout"
	// Register is the RFC 7591 registration endpoint; each client's
	// configuration endpoint (RFC 7592) is Register + "/" + client_id.
	Register = "/oauth2/register"
)

// Discovery documents and the public keys.
const (
	OpenIDConfiguration         = "/.well-known/openid-configuration"
	AuthorizationServerMetadata = "/.well-known/oauth-authorization-server"
	JWKS                        = "/.well-known/jwks.json"
)

// Operations.
const (
	Alive   = "/health/alive"
	Ready   = "/health/ready"
	Metrics = "/metrics"
)

// The host app's management API. API is its prefix; Scopes and OpenAPI
// answer without an API key (they describe the server, not its users).
const (
	API     = "/api"
	Scopes  = API + "/scopes"
	OpenAPI = API + "/openapi.json"
)

// Resources under API, relative to it: each package mounts its part on the
// /api group, and callers outside write API + Clients and so on.
const (
	Clients            = "/clients"
	AuthSession        = "/auth_session"
	Users              = "/users"
	RegistrationTokens = "/registration_tokens"
	Audit              = "/audit"
)
