package provider

import (
	"context"
	"errors"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
)

// revocationFactory replaces compose.OAuth2TokenRevocationFactory.
func revocationFactory(_ fosite.Configurator, store any, strategy any) any {
	return &familyRevocation{
		store:   store.(oauth2.TokenRevocationStorage),
		refresh: strategy.(oauth2.RefreshTokenStrategy),
		access:  strategy.(oauth2.AccessTokenStrategy),
	}
}

// familyRevocation is RFC 7009 revocation that closes fosite's gaps: a
// refresh token already rotated (spent) revokes its family instead of being
// ignored, since whoever still holds it may hold the live successor too
// (the fosite CVE-2020-15223 class); a storage failure is reported as
// temporarily_unavailable instead of being mistaken for an unknown token;
// and the family is revoked in one call, which the store runs under the
// grant lock.
type familyRevocation struct {
	store   oauth2.TokenRevocationStorage
	refresh oauth2.RefreshTokenStrategy
	access  oauth2.AccessTokenStrategy
}

var _ fosite.RevocationHandler = (*familyRevocation)(nil)

// RevokeToken revokes token's family when it belongs to client. An unknown
// token, or an access token already retired by a rotation, is nothing to
// revoke (RFC 7009 §2.2 answers 200 for those).
func (h *familyRevocation) RevokeToken(ctx context.Context, token string, hint fosite.TokenType, client fosite.Client) error {
	lookups := []func() (fosite.Requester, error){
		func() (fosite.Requester, error) {
			ar, err := h.store.GetRefreshTokenSession(ctx, h.refresh.RefreshTokenSignature(ctx, token), nil)
			if errors.Is(err, fosite.ErrInactiveToken) && ar != nil {
				return ar, nil // spent: still revokes the family
			}
			return ar, err
		},
		func() (fosite.Requester, error) {
			ar, err := h.store.GetAccessTokenSession(ctx, h.access.AccessTokenSignature(ctx, token), nil)
			if errors.Is(err, fosite.ErrInactiveToken) {
				return nil, fosite.ErrNotFound
			}
			return ar, err
		},
	}
	if hint == fosite.AccessToken {
		lookups[0], lookups[1] = lookups[1], lookups[0]
	}
	var found fosite.Requester
	for _, lookup := range lookups {
		ar, err := lookup()
		if errors.Is(err, fosite.ErrNotFound) {
			continue
		}
		if err != nil {
			return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithHint("The token could not be looked up; retry shortly.")
		}
		found = ar
		break
	}
	if found == nil {
		return nil
	}
	if found.GetClient().GetID() != client.GetID() {
		return fosite.ErrUnauthorizedClient
	}
	// One call revokes the whole family (refresh, access and code rows).
	if err := h.store.RevokeRefreshToken(ctx, found.GetID()); err != nil {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithHint("The token could not be revoked; retry shortly.")
	}
	return nil
}
