package provider

import "github.com/latchhq/latch/config"

// The protocol vocabulary Latch speaks, each list once: discovery
// advertises these, client validation (API, CLI, dynamic registration)
// accepts exactly these, and the CLI's help names them, so what a client
// may register and what discovery promises cannot drift apart.

// GrantTypes are the grants Latch serves (password and implicit are gone
// in OAuth 2.1).
var GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials}

// The grant types by name.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// ResponseTypes are the authorization response types: code only (OAuth
// 2.1 drops the implicit and hybrid flows).
var ResponseTypes = []string{"code"}

// TokenEndpointAuthMethods are the client authentication methods fosite
// performs for us at the token and revocation endpoints; "none" is a
// public client.
var TokenEndpointAuthMethods = []string{AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT, AuthNone}

// IntrospectionEndpointAuthMethods are TokenEndpointAuthMethods without
// "none": only a confidential client (or an API key) may introspect.
var IntrospectionEndpointAuthMethods = []string{AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT}

// The client authentication methods by name.
const (
	AuthSecretBasic   = "client_secret_basic"
	AuthSecretPost    = "client_secret_post"
	AuthPrivateKeyJWT = "private_key_jwt"
	AuthNone          = "none"
)

// ClientAssertionAlgs are the algorithms fosite verifies private_key_jwt
// assertions with.
var ClientAssertionAlgs = []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// IDTokenSigningAlgs are the algorithms the signing key manager holds keys
// for, so the ones ID tokens can be signed with. The list lives in config,
// which validates tokens.id_token_signing_alg against it and imports
// nothing of Latch's (this package would bring fosite and HTTP with it).
var IDTokenSigningAlgs = config.IDTokenSigningAlgs

// CodeChallengeMethods are the PKCE methods accepted: S256 only (OAuth 2.1
// drops plain).
var CodeChallengeMethods = []string{"S256"}
