package clients

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/secret"
	"github.com/latchhq/latch/storage"
)

// ManageStore is what creating, reading, changing and deleting clients and
// users' authorizations needs from storage. New takes it whole, so a store
// that cannot manage clients fails the build rather than the first request.
type ManageStore interface {
	CreateClient(ctx context.Context, c *storage.Client) error
	Client(ctx context.Context, id string) (*storage.Client, error)
	// ClientForUpdate reads past any cache and, inside InTx, holds the
	// row until the transaction ends: every read that feeds a write uses it.
	ClientForUpdate(ctx context.Context, id string) (*storage.Client, error)
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	ListClients(ctx context.Context, owner, after string, limit int) ([]storage.Client, error)
	UpdateClient(ctx context.Context, c *storage.Client) error
	DeleteClient(ctx context.Context, id string) error
	RotateClientSecret(ctx context.Context, id, hash string, keepOldUntil *time.Time) error
	ListUserGrants(ctx context.Context, subject string) ([]storage.UserGrant, error)
	UserGrantClients(ctx context.Context, subject string) ([]string, error)
	DeleteAuthorization(ctx context.Context, subject, clientID string) error
	Now() time.Time
}

// MaxGracePeriod bounds how long a rotated secret may keep working: a
// rotation is usually a response to a leak.
const MaxGracePeriod = 7 * 24 * time.Hour

// ErrNoSecret is returned when rotating the secret of a client that
// authenticates without one.
var ErrNoSecret = errors.New("this client authenticates without a client secret")

// The database store is the one ManageStore; checked here so a method it
// lacks fails the build, not the first request.
var _ ManageStore = (*storage.Store)(nil)

// Get loads a client.
func (s *Service) Get(ctx context.Context, id string) (*storage.Client, error) {
	return s.store.Client(ctx, id)
}

// List returns up to limit clients after the id cursor, optionally only
// those of one owner.
func (s *Service) List(ctx context.Context, owner, after string, limit int) ([]storage.Client, error) {
	return s.store.ListClients(ctx, owner, after, limit)
}

// MetadataOf is the registration metadata a stored client was built from.
func MetadataOf(c *storage.Client) Metadata {
	return Metadata{
		ClientID: c.ID, ClientName: c.Name, RedirectURIs: c.RedirectURIs, GrantTypes: c.GrantTypes,
		ResponseTypes: c.ResponseTypes, Scope: c.Scope, TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
		JWKS: c.JWKS, JWKSURI: c.JWKSURI, LogoURI: c.LogoURI, ClientURI: c.ClientURI, PolicyURI: c.PolicyURI,
		TOSURI: c.TOSURI, Contacts: c.Contacts, Owner: c.Owner, Audience: c.Audience,
		IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg, TokenEndpointAuthSigningAlg: c.TokenEndpointAuthSigningAlg,
		DPoPBoundAccessTokens: c.DPoPBoundAccessTokens, RequirePushedAuthRequests: c.RequirePushedAuthRequests,
		PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, BackchannelLogoutURI: c.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired,
		AllowedCORSOrigins:               c.AllowedCORSOrigins, ApplicationType: c.ApplicationType, RefreshReuseInterval: c.RefreshReuseInterval,
	}
}

// Update validates m as the client's complete new metadata and stores it.
// The authentication method cannot change: a public client has no secret
// to start using, and a confidential one must not silently lose its own.
func (s *Service) Update(ctx context.Context, id string, m Metadata) (*storage.Client, error) {
	return s.Patch(ctx, id, func(cur *Metadata) error { *cur = m; return nil })
}

// Patch applies edit to the client's current metadata and stores the
// result, as Update does. The current metadata is read from the database
// with the row held until the write commits, so a change made meanwhile
// through another instance (a removed redirect URI) is neither lost nor
// undone by a copy read before it; the secret is never written here, so a
// concurrent rotation always stands.
func (s *Service) Patch(ctx context.Context, id string, edit func(*Metadata) error) (*storage.Client, error) {
	var c *storage.Client
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		old, err := s.store.ClientForUpdate(ctx, id)
		if err != nil {
			return err
		}
		m := MetadataOf(old)
		if err := edit(&m); err != nil {
			return err
		}
		if m.ClientID != id {
			return invalid("client_id", "cannot change")
		}
		if m.TokenEndpointAuthMethod == "" {
			m.TokenEndpointAuthMethod = old.TokenEndpointAuthMethod
		}
		if m.TokenEndpointAuthMethod != old.TokenEndpointAuthMethod {
			return invalid("token_endpoint_auth_method", "cannot change; register a new client instead")
		}
		if c, err = s.Build(m); err != nil {
			return err
		}
		// The row keeps its secret (UpdateClient leaves those columns
		// alone); the copy returned shows what is stored.
		c.SecretHash, c.RotatedSecretHash, c.RotatedSecretExpiresAt = old.SecretHash, old.RotatedSecretHash, old.RotatedSecretExpiresAt
		c.CreatedAt = old.CreatedAt
		c.Dynamic, c.RegistrationTokenHash, c.ObtainedToken = old.Dynamic, old.RegistrationTokenHash, old.ObtainedToken
		return s.store.UpdateClient(ctx, c)
	})
	if err != nil {
		return nil, err
	}
	s.audit.Record(ctx, audit.Event{Name: audit.ClientUpdated, ClientID: id, Details: clientDetails(c)})
	return c, nil
}

// Delete removes a client and revokes everything issued to it.
func (s *Service) Delete(ctx context.Context, id string) error {
	if err := s.store.DeleteClient(ctx, id); err != nil {
		return err
	}
	s.audit.Record(ctx, audit.Event{Name: audit.ClientDeleted, ClientID: id})
	return nil
}

// RotateSecret gives a confidential client a new secret, returned once in
// plaintext. The old one stops working at once, or after grace when grace
// is positive; the second return is then when it stops.
func (s *Service) RotateSecret(ctx context.Context, id string, grace time.Duration) (string, *time.Time, error) {
	if grace < 0 || grace > MaxGracePeriod {
		return "", nil, invalid("grace_period", "must be between 0 and %s", MaxGracePeriod)
	}
	plain := secret.New()
	h, _ := s.hasher.Hash(ctx, []byte(plain))
	var until *time.Time
	if grace > 0 {
		t := s.store.Now().Add(grace).UTC()
		until = &t
	}
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		c, err := s.store.ClientForUpdate(ctx, id)
		if err != nil {
			return err
		}
		if c.Public || c.TokenEndpointAuthMethod == "private_key_jwt" {
			return ErrNoSecret
		}
		return s.store.RotateClientSecret(ctx, id, string(h), until)
	})
	if err != nil {
		return "", nil, err
	}
	details := map[string]any{"grace_period": grace.String()}
	s.audit.Record(ctx, audit.Event{Name: audit.ClientSecretRotated, ClientID: id, Details: details})
	return plain, until, nil
}

// Authorizations lists what a user has let clients have: every client with
// live tokens or a remembered consent (a user's "connected apps").
func (s *Service) Authorizations(ctx context.Context, user string) ([]storage.UserGrant, error) {
	return s.store.ListUserGrants(ctx, user)
}

// RevokeAllAuthorizations revokes everything a user granted: every
// remembered consent and every code and token of theirs, client by client
// under each grant's lock. It returns the clients revoked.
func (s *Service) RevokeAllAuthorizations(ctx context.Context, user string) ([]string, error) {
	ids, err := s.store.UserGrantClients(ctx, user)
	if err != nil {
		return nil, err
	}
	var revoked []string
	for _, id := range ids {
		err := s.store.DeleteAuthorization(ctx, user, id)
		if storage.IsNotFound(err) {
			// Nothing live was left for this client (a spent grant row).
			continue
		}
		if err != nil {
			return revoked, fmt.Errorf("revoke %s's grant to %s: %w", user, id, err)
		}
		revoked = append(revoked, id)
		s.audit.Record(ctx, audit.Event{Name: audit.AuthorizationRevoked, User: user, ClientID: id, Details: map[string]any{"all": true}})
	}
	return revoked, nil
}

// RevokeAuthorization forgets a user's authorization of a client and
// revokes that user's tokens for it, refresh tokens included.
func (s *Service) RevokeAuthorization(ctx context.Context, user, clientID string) error {
	if err := s.store.DeleteAuthorization(ctx, user, clientID); err != nil {
		return err
	}
	s.audit.Record(ctx, audit.Event{Name: audit.AuthorizationRevoked, User: user, ClientID: clientID})
	return nil
}

// compactJSON validates that raw is one JSON object and returns it compact.
func compactJSON(raw json.RawMessage) (string, error) {
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return "", fmt.Errorf("must be a JSON object")
	}
	b, _ := json.Marshal(obj)
	return string(b), nil
}
