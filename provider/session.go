package provider

import (
	"maps"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// Session is what Latch keeps with every grant: the OpenID session (subject,
// ID-token claims, expiries), the claims the host app gave at approval, and
// what the RFC 9068 access token needs. It is stored as JSON.
type Session struct {
	openid.DefaultSession
	ClientID string `json:"client_id"`
	// UserClaims are released at userinfo, filtered by granted scopes.
	UserClaims map[string]any `json:"user_claims,omitempty"`
	// Audience is the access token's aud when it has no other.
	Audience []string `json:"aud,omitempty"`
	// TokenResources are the resources the current access token is for
	// (its aud, with any audience fosite granted).
	TokenResources []string `json:"tres,omitempty"`
	// Resources are the resource servers (RFC 8707) authorised at the
	// authorization request; every token of the grant may be for all of
	// them or narrowed to some (RFC 8707 §2.2).
	Resources []string `json:"res,omitempty"`
	// JKT binds the tokens to a DPoP key (RFC 9449 cnf.jkt).
	JKT string `json:"jkt,omitempty"`
	// ExtraATClaims are the host app's additions to JWT access tokens
	// and introspection; ExtraIDClaims its additions to the ID token and
	// userinfo (SPEC §3.3). Neither holds a name Latch sets itself.
	ExtraATClaims map[string]any `json:"extra_at_claims,omitempty"`
	ExtraIDClaims map[string]any `json:"extra_id_claims,omitempty"`
}

var (
	_ openid.Session             = (*Session)(nil)
	_ oauth2.JWTSessionContainer = (*Session)(nil)
)

// NewSession returns an empty session to load a stored grant into.
func NewSession() *Session {
	return &Session{DefaultSession: openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{},
		Headers: &jwt.Headers{},
	}}
}

// UserSession builds the session for a user grant. idClaims are the
// scope-filtered approval claims; idTokenClaims and atClaims the host app's
// own additions to the ID token and the access token.
func UserSession(issuer, clientID, subject string, authTime, requestedAt time.Time, acr string, idClaims, userClaims, idTokenClaims, atClaims map[string]any) *Session {
	s := NewSession()
	s.Subject = subject
	s.ClientID = clientID
	s.UserClaims = userClaims
	s.Audience = []string{issuer}
	s.ExtraIDClaims, s.ExtraATClaims = idTokenClaims, atClaims
	if len(idTokenClaims) > 0 {
		idClaims = maps.Clone(idClaims)
		if idClaims == nil {
			idClaims = map[string]any{}
		}
		maps.Copy(idClaims, idTokenClaims)
	}
	s.Claims = &jwt.IDTokenClaims{
		Issuer:                              issuer,
		Subject:                             subject,
		AuthTime:                            authTime.UTC(),
		RequestedAt:                         requestedAt.UTC(),
		AuthenticationContextClassReference: acr,
		Extra:                               idClaims,
	}
	return s
}

// Clone deep-copies the session (fosite clones before every refresh).
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := *s
	if d, ok := s.DefaultSession.Clone().(*openid.DefaultSession); ok && d != nil {
		c.DefaultSession = *d
	}
	c.UserClaims = maps.Clone(s.UserClaims)
	c.ExtraATClaims = maps.Clone(s.ExtraATClaims)
	c.ExtraIDClaims = maps.Clone(s.ExtraIDClaims)
	c.Audience = append([]string(nil), s.Audience...)
	c.Resources = append([]string(nil), s.Resources...)
	c.TokenResources = append([]string(nil), s.TokenResources...)
	return &c
}

// GetJWTClaims builds the RFC 9068 access-token claims.
func (s *Session) GetJWTClaims() jwt.JWTClaimsContainer {
	extra := make(map[string]any, len(s.ExtraATClaims)+3)
	// The host app's claims first: the names Latch sets overwrite them
	// (approval refuses them anyway).
	maps.Copy(extra, s.ExtraATClaims)
	extra["client_id"] = s.ClientID
	if s.JKT != "" {
		extra["cnf"] = map[string]any{"jkt": s.JKT}
	}
	if s.Claims != nil && !s.Claims.AuthTime.IsZero() {
		extra["auth_time"] = s.Claims.AuthTime.Unix()
	}
	return &atClaims{JWTClaims: &jwt.JWTClaims{Subject: s.Subject, Extra: extra}, resources: s.TokenResources, defaultAud: s.Audience}
}

// GetJWTHeader marks the token as an access token (RFC 9068 §2.1), so it
// cannot be confused with an ID token.
func (s *Session) GetJWTHeader() *jwt.Headers {
	return &jwt.Headers{Extra: map[string]any{"typ": "at+jwt"}}
}

// atClaims sets aud: what fosite granted (an `audience` parameter) and
// the token's resources, else the default (the issuer; RFC 9068 requires
// an aud).
type atClaims struct {
	*jwt.JWTClaims
	resources, defaultAud []string
}

func (c *atClaims) With(expiry time.Time, scope, audience []string) jwt.JWTClaimsContainer {
	c.JWTClaims.With(expiry, scope, TokenAudience(audience, c.resources, c.defaultAud))
	return c
}

// TokenAudience is a token's aud: the audience fosite granted and the
// token's resources, each once; the default when both are empty.
func TokenAudience(granted, resources, def []string) []string {
	out := slices.Clone(granted)
	for _, a := range resources {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return slices.Clone(def)
	}
	return out
}
