// Package provider composes fosite into Latch's OAuth 2.1 / OpenID Connect
// core: which grants exist, how tokens are made, and the session they carry.
package provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fstorage "github.com/ory/fosite/storage"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchhq/latch/endpoint"
	"github.com/latchhq/latch/outbound"
	"github.com/latchhq/latch/storage"
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
	// Fetcher fetches clients' jwks_uri; nil is a strict
	// outbound.Fetcher (no loopback).
	Fetcher Fetcher
	// Now is the clock client assertions' exp is bounded by; nil is
	// time.Now.
	Now func() time.Time
	// Log receives warnings about unusable key sets; nil discards.
	Log *slog.Logger
}

// New builds the fosite provider with exactly the grants Latch offers:
// authorization code with PKCE S256 for every client, refresh with rotation,
// client credentials, OpenID Connect, introspection, revocation and pushed
// authorization requests. No
// implicit, hybrid or password handler is registered, so fosite refuses them.
func New(o Options, store Storage, signer jwt.Signer) *fosite.Fosite {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Fetcher == nil {
		o.Fetcher = outbound.New(outbound.Options{Log: o.Log})
	}
	cfg := &fosite.Config{
		AccessTokenLifespan:            o.AccessTokenLifetime,
		RefreshTokenLifespan:           o.RefreshTokenLifetime,
		IDTokenLifespan:                o.IDTokenLifetime,
		AuthorizeCodeLifespan:          o.CodeLifetime,
		IDTokenIssuer:                  o.Issuer,
		AccessTokenIssuer:              o.Issuer,
		TokenURL:                       o.Issuer + endpoint.Token,
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
		// state and nonce belong to the client; Latch echoes them whatever
		// their length (SPEC §2). fosite treats 0 as "its default of 8", so
		// 1 is the smallest setting: any non-empty nonce passes, and an
		// absent state (optional under PKCE) is let through by the server.
		MinParameterEntropy:            1,
		PushedAuthorizeContextLifespan: o.PARLifetime,
		// fosite's own fetcher follows redirects, retries without a
		// deadline and reads unbounded bodies; ours keeps SPEC §7.
		// (fosite's HTTPClient serves only request_uri fetches, which
		// never happen: no client registers request_uris.)
		JWKSFetcherStrategy: newJWKSFetcher(o.Fetcher, o.Now, o.Log),
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
	// compose.Compose returns its *fosite.Fosite behind the interface.
	f := p.(*fosite.Fosite)
	f.Config = &assertionAudiences{Config: cfg, issuer: o.Issuer}
	cfg.ClientAuthenticationStrategy = assertionFailuresAreInvalidClient(f, o.Now)
	return f
}

// MaxClientAssertionLifetime is how far in the future a client assertion's
// exp may lie (plus assertionClockSkew). fosite accepts any exp and keeps
// the jti until then, so an unbounded one is a long-lived credential and a
// replay-cache row kept for years.
const MaxClientAssertionLifetime = 10 * time.Minute

// assertionClockSkew forgives a client clock running a little ahead.
const assertionClockSkew = time.Minute

// assertionFailuresAreInvalidClient makes every failed private_key_jwt
// authentication a 401 invalid_client (RFC 6749 §5.2, RFC 7523 §3.2).
// fosite answers an unknown kid with invalid_request, a replayed jti with
// its own jti_known, and an expired assertion with a bare error that would
// become a 500. It also refuses assertions that live too long, and names
// the client to the jti replay cache, which keeps jtis per client.
func assertionFailuresAreInvalidClient(f *fosite.Fosite, now func() time.Time) fosite.ClientAuthenticationStrategy {
	return func(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
		// A client registered with either secret method may use the other
		// (SPEC §2): libraries differ in their defaults.
		if _, sec, ok := r.BasicAuth(); ok && sec != "" {
			ctx = storage.WithSecretMethod(ctx, "client_secret_basic")
		} else if form.Get("client_secret") != "" {
			ctx = storage.WithSecretMethod(ctx, "client_secret_post")
		}
		raw := form.Get("client_assertion")
		if raw != "" {
			// The claims are read before the signature is checked, which
			// is safe for what they are used for: refusing, and naming
			// the client whose jtis fosite consults only after it has
			// verified the signature and that sub is that client.
			sub, exp := peekAssertion(raw)
			if !exp.IsZero() && exp.After(now().Add(MaxClientAssertionLifetime+assertionClockSkew)) {
				return nil, fosite.ErrInvalidClient.WithHintf("The client assertion's exp is more than %s ahead; assertions must be short-lived.", MaxClientAssertionLifetime)
			}
			ctx = storage.WithAssertionClient(ctx, sub)
		}
		c, err := f.DefaultClientAuthenticationStrategy(ctx, r, form)
		if err == nil || raw == "" {
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

// peekAssertion reads sub and exp from a compact JWS without verifying
// it; each is zero when missing or malformed (fosite then refuses the
// assertion with its own message).
func peekAssertion(raw string) (sub string, exp time.Time) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", time.Time{}
	}
	// A map, not a struct: encoding/json would match "SUB" to a sub field,
	// and fosite reads exactly "sub"; the two must agree on the client.
	var claims map[string]any
	if json.Unmarshal(payload, &claims) != nil {
		return "", time.Time{}
	}
	sub, _ = claims["sub"].(string)
	if e, ok := claims["exp"].(float64); ok {
		// Clamp so a huge exp cannot overflow into the past.
		exp = time.Unix(int64(min(max(e, 0), 1<<40)), 0)
	}
	return sub, exp
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
