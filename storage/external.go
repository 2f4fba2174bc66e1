package storage

import "context"

// ExternalClients resolves clients that are not rows: client ids that are
// URLs of Client ID Metadata Documents (SPEC §6). Every client lookup
// (fosite's, the approval API's, stored grants') goes through it, so such
// a client works at authorize, PAR, token, revocation and introspection.
type ExternalClients interface {
	// Handles reports whether id is resolved here rather than stored.
	Handles(id string) bool
	// Client returns the client (shared: read-only), or an error that
	// IsNotFound recognises when it does not resolve.
	Client(ctx context.Context, id string) (*Client, error)
}

// UseExternalClients routes the ids x handles to x. Call it once, while
// wiring, before the store serves requests.
func (s *Store) UseExternalClients(x ExternalClients) { s.external = x }

// PrepareKeys parses the client's inline JWKS for a client built outside
// the database (a loaded row does this itself).
func (c *Client) PrepareKeys() error { return c.parseJWKS() }
