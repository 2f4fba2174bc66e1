// Package provider composes fosite into Latch's OAuth 2.1 / OpenID Connect
// core: which grants exist, how tokens are made, and the session they carry.
package provider

import (
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fstorage "github.com/ory/fosite/storage"
	"github.com/ory/fosite/token/jwt"
)

// Storage is every fosite storage contract the enabled handlers rely on.
type Storage interface {
	fosite.Storage
	oauth2.CoreStorage
	oauth2.TokenRevocationStorage
	openid.OpenIDConnectRequestStorage
	pkce.PKCERequestStorage
	fstorage.Transactional
}

// Options are the protocol settings taken from config.
type Options struct {
	Issuer               string
	AccessTokenLifetime  time.Duration
	RefreshTokenLifetime time.Duration
	IDTokenLifetime      time.Duration
	CodeLifetime         time.Duration
	OpaqueAccessTokens   bool
	// HMACSecret signs codes and refresh tokens (and opaque access tokens);
	// every instance must share it.
	HMACSecret []byte
	Hasher     fosite.Hasher
}

// New builds the fosite provider with exactly the grants Latch offers:
// authorization code with PKCE S256 for every client, refresh with rotation,
// client credentials, OpenID Connect, introspection and revocation. No
// implicit, hybrid or password handler is registered, so fosite refuses them.
func New(o Options, store Storage, signer jwt.Signer) (fosite.OAuth2Provider, *fosite.Config) {
	cfg := &fosite.Config{
		AccessTokenLifespan:            o.AccessTokenLifetime,
		RefreshTokenLifespan:           o.RefreshTokenLifetime,
		IDTokenLifespan:                o.IDTokenLifetime,
		AuthorizeCodeLifespan:          o.CodeLifetime,
		IDTokenIssuer:                  o.Issuer,
		AccessTokenIssuer:              o.Issuer,
		TokenURL:                       o.Issuer + "/oauth2/token",
		GlobalSecret:                   o.HMACSecret,
		ClientSecretsHasher:            o.Hasher,
		EnforcePKCE:                    true,
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		RefreshTokenScopes:             []string{"offline_access"},
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:       fosite.DefaultAudienceMatchingStrategy,
		JWTScopeClaimKey:               jwt.JWTScopeFieldString,
		SendDebugMessagesToClients:     false,
		MinParameterEntropy:            fosite.MinParameterEntropy,
	}
	hmacStrategy := compose.NewOAuth2HMACStrategy(cfg)
	var core oauth2.CoreStrategy = hmacStrategy
	if !o.OpaqueAccessTokens {
		core = &oauth2.DefaultJWTStrategy{Signer: signer, HMACSHAStrategy: hmacStrategy, Config: cfg}
	}
	strategy := &compose.CommonStrategy{
		CoreStrategy:               core,
		OpenIDConnectTokenStrategy: &openid.DefaultStrategy{Signer: signer, Config: cfg},
		Signer:                     signer,
	}
	p := compose.Compose(cfg, store, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.OAuth2PKCEFactory,
	)
	return p, cfg
}
