// Package provider composes fosite into Latch's OAuth 2.1 / OpenID Connect
// core: which grants exist, how tokens are made, and the session they carry.
package provider

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/hashicorp/go-retryablehttp"
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
	fosite.PARStorage
	fstorage.Transactional
}

// ClientAssertionAlgs are the algorithms fosite verifies private_key_jwt
// assertions with. Discovery advertises them and registration accepts only
// them, so the two cannot drift apart.
var ClientAssertionAlgs = []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// Options are the protocol settings taken from config.
type Options struct {
	Issuer               string
	AccessTokenLifetime  time.Duration
	RefreshTokenLifetime time.Duration
	IDTokenLifetime      time.Duration
	CodeLifetime         time.Duration
	// PARLifetime is how long a pushed request_uri can be redeemed.
	PARLifetime        time.Duration
	OpaqueAccessTokens bool
	// HMACSecret signs codes and refresh tokens (and opaque access tokens);
	// every instance must share it.
	HMACSecret []byte
	Hasher     fosite.Hasher
}

// New builds the fosite provider with exactly the grants Latch offers:
// authorization code with PKCE S256 for every client, refresh with rotation,
// client credentials, OpenID Connect, introspection, revocation and pushed
// authorization requests. No
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
		PushedAuthorizeContextLifespan: o.PARLifetime,
		HTTPClient:                     jwksHTTPClient(),
		// Latch enforces PAR itself (globally or per client) at the first
		// authorization request only; fosite's flag would also refuse the
		// request rebuilt when the user comes back from approval.
		IsPushedAuthorizeEnforced: false,
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
		revocationFactory, // not compose's: see familyRevocation
		compose.OAuth2PKCEFactory,
		compose.PushedAuthorizeHandlerFactory,
	)
	// Client assertions (private_key_jwt) may name the issuer or the token
	// endpoint as aud: RFC 7523bis moves clients to the issuer, and the
	// token endpoint is what OIDC Core told them until now.
	f := p.(*fosite.Fosite)
	f.Config = &assertionAudiences{Config: cfg, issuer: o.Issuer}
	cfg.ClientAuthenticationStrategy = assertionFailuresAreInvalidClient(f)
	return p, cfg
}

// assertionFailuresAreInvalidClient makes every failed private_key_jwt
// authentication a 401 invalid_client (RFC 6749 §5.2, RFC 7523 §3.2).
// fosite answers an unknown kid with invalid_request, a replayed jti with
// its own jti_known, and an expired assertion with a bare error that would
// become a 500.
func assertionFailuresAreInvalidClient(f *fosite.Fosite) fosite.ClientAuthenticationStrategy {
	return func(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
		c, err := f.DefaultClientAuthenticationStrategy(ctx, r, form)
		if err == nil || form.Get("client_assertion") == "" {
			return c, err
		}
		var rfc *fosite.RFC6749Error
		switch {
		case errors.As(err, &rfc) && rfc.ErrorField == fosite.ErrInvalidClient.ErrorField:
			return nil, err
		case errors.Is(err, fosite.ErrJTIKnown):
			return nil, fosite.ErrInvalidClient.WithHint("The client assertion's jti has already been used.").WithWrap(err)
		case errors.As(err, &rfc) && rfc.CodeField >= 500:
			return nil, err
		case errors.As(err, &rfc):
			return nil, fosite.ErrInvalidClient.WithHint(rfc.GetDescription()).WithWrap(err)
		}
		return nil, fosite.ErrInvalidClient.WithHint("The client assertion could not be verified (expired, not yet valid or malformed).").WithWrap(err)
	}
}

// assertionAudiences is fosite's config with the issuer added to the
// audiences a client assertion may carry.
type assertionAudiences struct {
	*fosite.Config
	issuer string
}

func (c *assertionAudiences) GetTokenURLs(context.Context) []string {
	return []string{c.issuer, c.TokenURL}
}

// jwksHTTPClient fetches clients' jwks_uri: quiet (the default logs every
// request to stderr), with a short timeout and one retry, so a slow key
// server cannot hold token requests open.
func jwksHTTPClient() *retryablehttp.Client {
	c := retryablehttp.NewClient()
	c.Logger = nil
	c.RetryMax = 1
	c.HTTPClient.Timeout = 5 * time.Second
	return c
}
