package storage

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/latchhq/latch/migrations"
)

// Client is a registered OAuth client. Field names follow RFC 7591; the
// secret is only ever held as a keyed hash.
type Client struct {
	ID                        string    `gorm:"column:id;primaryKey" json:"client_id"`
	SecretHash                string    `gorm:"column:secret_hash" json:"-"`
	Public                    bool      `gorm:"column:public" json:"-"`
	Name                      string    `gorm:"column:client_name" json:"client_name"`
	RedirectURIs              []string  `gorm:"column:redirect_uris;serializer:json" json:"redirect_uris"`
	GrantTypes                []string  `gorm:"column:grant_types;serializer:json" json:"grant_types"`
	ResponseTypes             []string  `gorm:"column:response_types;serializer:json" json:"response_types"`
	Scope                     string    `gorm:"column:scope" json:"scope"`
	Audience                  []string  `gorm:"column:audience;serializer:json" json:"audience,omitempty"`
	TokenEndpointAuthMethod   string    `gorm:"column:token_endpoint_auth_method" json:"token_endpoint_auth_method"`
	JWKS                      string    `gorm:"column:jwks" json:"-"`
	JWKSURI                   string    `gorm:"column:jwks_uri" json:"jwks_uri,omitempty"`
	LogoURI                   string    `gorm:"column:logo_uri" json:"logo_uri,omitempty"`
	ClientURI                 string    `gorm:"column:client_uri" json:"client_uri,omitempty"`
	PolicyURI                 string    `gorm:"column:policy_uri" json:"policy_uri,omitempty"`
	TOSURI                    string    `gorm:"column:tos_uri" json:"tos_uri,omitempty"`
	Contacts                  []string  `gorm:"column:contacts;serializer:json" json:"contacts,omitempty"`
	Owner                     string    `gorm:"column:owner" json:"owner,omitempty"`
	IDTokenSignedResponseAlg  string    `gorm:"column:id_token_signed_response_alg" json:"id_token_signed_response_alg,omitempty"`
	DPoPBoundAccessTokens     bool      `gorm:"column:dpop_bound_access_tokens" json:"dpop_bound_access_tokens,omitempty"`
	RequirePushedAuthRequests bool      `gorm:"column:require_pushed_authorization_requests" json:"require_pushed_authorization_requests,omitempty"`
	CreatedAt                 time.Time `gorm:"column:created_at" json:"created_at"`
	UpdatedAt                 time.Time `gorm:"column:updated_at" json:"updated_at"`
	// The previous secret's hash stays valid until RotatedSecretExpiresAt
	// when a rotation asked for a grace period.
	RotatedSecretHash      string     `gorm:"column:rotated_secret_hash" json:"-"`
	RotatedSecretExpiresAt *time.Time `gorm:"column:rotated_secret_expires_at" json:"-"`

	// TokenEndpointAuthSigningAlg is the private_key_jwt assertion alg
	// (RFC 7591); empty derives it from the keys.
	TokenEndpointAuthSigningAlg string `gorm:"column:token_endpoint_auth_signing_alg" json:"token_endpoint_auth_signing_alg,omitempty"`

	// Sign-out metadata (OpenID Connect RP-Initiated and Back-Channel
	// Logout 1.0).
	PostLogoutRedirectURIs           []string `gorm:"column:post_logout_redirect_uris;serializer:json" json:"post_logout_redirect_uris,omitempty"`
	BackchannelLogoutURI             string   `gorm:"column:backchannel_logout_uri" json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired bool     `gorm:"column:backchannel_logout_session_required" json:"backchannel_logout_session_required,omitempty"`

	// Dynamic marks a client that registered itself (RFC 7591); only it
	// has a RegistrationTokenHash, the hash of its RFC 7592 registration
	// access token. ObtainedToken says it has obtained a token at least
	// once: the janitor deletes dynamic clients that never did.
	Dynamic               bool   `gorm:"column:dynamic" json:"-"`
	RegistrationTokenHash string `gorm:"column:registration_token_hash" json:"-"`
	ObtainedToken         bool   `gorm:"column:obtained_token" json:"-"`

	// Document is true for a client identified by a Client ID Metadata
	// Document (its id is the document's URL); such clients are never rows.
	Document bool `gorm:"-" json:"-"`

	// AllowedCORSOrigins are the exact browser origins (scheme://host[:port])
	// that may call the token, revocation and userinfo endpoints as this
	// client.
	AllowedCORSOrigins []string `gorm:"column:allowed_cors_origins;serializer:json" json:"allowed_cors_origins,omitempty"`
	// ApplicationType is "web", "native" or, for clients registered before
	// it existed, empty (validated as they were then).
	ApplicationType string `gorm:"column:application_type" json:"application_type,omitempty"`
	// RefreshReuseInterval (seconds) overrides the server's refresh reuse
	// interval for this client when positive.
	RefreshReuseInterval int `gorm:"column:refresh_reuse_interval" json:"refresh_reuse_interval,omitempty"`

	// jwks is JWKS parsed once on load: fosite wants go-jose v3 types here.
	jwks *jose.JSONWebKeySet `gorm:"-"`
	// rotatedLive says whether RotatedSecretHash is in its grace period by
	// the store's clock; set per read by asOfNow, never on the cached row.
	rotatedLive bool `gorm:"-"`
}

func (Client) TableName() string { return "clients" }

var (
	_ fosite.Client                   = (*Client)(nil)
	_ fosite.OpenIDConnectClient      = (*Client)(nil)
	_ fosite.ClientWithSecretRotation = (*Client)(nil)
)

// GetRotatedHashes lets fosite accept the previous secret during a grace
// period asked for at rotation; never after it ends.
func (c *Client) GetRotatedHashes() [][]byte {
	if !c.rotatedLive || c.RotatedSecretHash == "" {
		return nil
	}
	return [][]byte{[]byte(c.RotatedSecretHash)}
}

func (c *Client) GetID() string                   { return c.ID }
func (c *Client) GetHashedSecret() []byte         { return []byte(c.SecretHash) }
func (c *Client) GetRedirectURIs() []string       { return c.RedirectURIs }
func (c *Client) GetGrantTypes() fosite.Arguments { return c.GrantTypes }
func (c *Client) GetResponseTypes() fosite.Arguments {
	return c.ResponseTypes
}
func (c *Client) GetScopes() fosite.Arguments         { return fosite.RemoveEmpty(splitScope(c.Scope)) }
func (c *Client) IsPublic() bool                      { return c.Public }
func (c *Client) GetAudience() fosite.Arguments       { return c.Audience }
func (c *Client) GetRequestURIs() []string            { return nil }
func (c *Client) GetJSONWebKeys() *jose.JSONWebKeySet { return c.jwks }
func (c *Client) GetJSONWebKeysURI() string           { return c.JWKSURI }
func (c *Client) GetRequestObjectSigningAlgorithm() string {
	return ""
}
func (c *Client) GetTokenEndpointAuthMethod() string { return c.TokenEndpointAuthMethod }

// GetTokenEndpointAuthSigningAlgorithm is the one algorithm fosite accepts
// for this client's assertions (it compares it with the assertion's alg, so
// it cannot be empty): the registered value, else what the inline JWKS's
// first signing key implies, else RS256, OIDC's default.
func (c *Client) GetTokenEndpointAuthSigningAlgorithm() string {
	if c.TokenEndpointAuthSigningAlg != "" {
		return c.TokenEndpointAuthSigningAlg
	}
	if c.jwks != nil {
		for _, k := range c.jwks.Keys {
			if k.Use != "" && k.Use != "sig" {
				continue
			}
			if k.Algorithm != "" {
				return k.Algorithm
			}
			switch pub := k.Key.(type) {
			case *ecdsa.PublicKey:
				switch pub.Curve {
				case elliptic.P384():
					return "ES384"
				case elliptic.P521():
					return "ES512"
				}
				return "ES256"
			case *rsa.PublicKey:
				return "RS256"
			}
		}
	}
	return "RS256"
}

// AfterFind parses the stored JWKS once per load.
func (c *Client) AfterFind(*gorm.DB) error { return c.parseJWKS() }

func (c *Client) parseJWKS() error {
	c.jwks = nil
	if c.JWKS == "" {
		return nil
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(c.JWKS), &set); err != nil {
		return fmt.Errorf("client %s: stored jwks: %w", c.ID, err)
	}
	c.jwks = &set
	return nil
}

// GetClient loads a client (cached: fosite only reads it); ErrNotFound
// when it does not exist.
func (s *Store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.cachedClient(ctx, id)
	if err != nil {
		return nil, err
	}
	return forRequest(ctx, s.asOfNow(c)), nil
}

// asOfNow judges a previous secret's grace period at this read. The cached
// row is shared and must not change, so only a client that has a previous
// secret (rare: during a rotation) is copied.
func (s *Store) asOfNow(c *Client) *Client {
	if c.RotatedSecretHash == "" {
		return c
	}
	cp := *c
	cp.rotatedLive = cp.RotatedSecretExpiresAt != nil && cp.RotatedSecretExpiresAt.After(s.now())
	return &cp
}

// Client loads a client as our own type; the copy is the caller's to change.
func (s *Store) Client(ctx context.Context, id string) (*Client, error) {
	c, err := s.cachedClient(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.asOfNow(c).clone(), nil
}

// normalize stores absent lists as [] rather than NULL.
func (c *Client) normalize() {
	for _, p := range []*[]string{&c.RedirectURIs, &c.GrantTypes, &c.ResponseTypes, &c.Audience, &c.Contacts, &c.AllowedCORSOrigins, &c.PostLogoutRedirectURIs} {
		if *p == nil {
			*p = []string{}
		}
	}
}

// CreateClient inserts a client; a duplicate id is a conflict.
func (s *Store) CreateClient(ctx context.Context, c *Client) error {
	now := s.now()
	c.CreatedAt, c.UpdatedAt = now, now
	c.normalize()
	if err := c.parseJWKS(); err != nil {
		return err
	}
	return translate(s.conn(ctx).Create(c).Error)
}

// ClientForUpdate reads a client for a read-modify-write: from the
// database, never the cache (another instance may have changed it a moment
// ago), and, on PostgreSQL inside a transaction, locking its row until the
// transaction ends so a concurrent writer waits instead of being
// overwritten. SQLite needs no lock: its transactions begin IMMEDIATE and
// so already run one at a time.
func (s *Store) ClientForUpdate(ctx context.Context, id string) (*Client, error) {
	q := s.conn(ctx)
	if s.dialect == migrations.Postgres && InTransaction(ctx) {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var c Client
	if err := q.Where("id = ?", id).Take(&c).Error; err != nil {
		return nil, translate(err)
	}
	return s.asOfNow(&c), nil
}

// secretColumns are written only by CreateClient and RotateClientSecret: a
// metadata update carries whatever secret its caller read, which may be one
// a concurrent rotation has since replaced.
var secretColumns = []string{"secret_hash", "rotated_secret_hash", "rotated_secret_expires_at"}

// UpdateClient replaces a client's stored metadata; its secret columns are
// left as they are.
func (s *Store) UpdateClient(ctx context.Context, c *Client) error {
	c.UpdatedAt = s.now()
	c.normalize()
	if err := c.parseJWKS(); err != nil {
		return err
	}
	res := s.conn(ctx).Select("*").Omit(append([]string{"created_at"}, secretColumns...)...).Where("id = ?", c.ID).Updates(c)
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("client %s: %w", c.ID, ErrNotFound)
	}
	return nil
}

// DeleteClient removes a client and every token, session and authorization
// issued to it, in one transaction.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		db := s.conn(ctx)
		// The client's grant rows go first: deleting them waits for any
		// issuing transaction holding one (the grant lock), so the token
		// deletes below, later statements, see what it committed; one
		// starting after this commits finds no token or code to use.
		if err := db.Exec("DELETE FROM grants WHERE client_id = ?", id).Error; err != nil {
			return translate(err)
		}
		res := db.Where("id = ?", id).Delete(&Client{})
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("client %s: %w", id, ErrNotFound)
		}
		for _, q := range []struct {
			table string
			where string
		}{
			{"oauth2_tokens", "client_id = ?"},
			{"auth_sessions", "client_id = ?"},
			{"authorizations", "client_id = ?"},
		} {
			if err := db.Table(q.table).Where(q.where, id).Delete(nil).Error; err != nil {
				return translate(err)
			}
		}
		return nil
	})
}

// ListClients returns up to limit clients ordered by id after the cursor
// (an id), optionally only those of one owner.
func (s *Store) ListClients(ctx context.Context, owner, after string, limit int) ([]Client, error) {
	q := s.conn(ctx).Order("id").Limit(limit)
	if owner != "" {
		q = q.Where("owner = ?", owner)
	}
	if after != "" {
		q = q.Where("id > ?", after)
	}
	var out []Client
	if err := q.Find(&out).Error; err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// RotateClientSecret replaces a client's secret hash. With a non-nil
// keepOldUntil the current hash keeps working until then; otherwise it
// stops working at once (and any earlier grace ends too).
func (s *Store) RotateClientSecret(ctx context.Context, id, hash string, keepOldUntil *time.Time) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		c, err := s.ClientForUpdate(ctx, id)
		if err != nil {
			return err
		}
		fields := map[string]any{"secret_hash": hash, "updated_at": s.now(),
			"rotated_secret_hash": "", "rotated_secret_expires_at": nil}
		if keepOldUntil != nil {
			fields["rotated_secret_hash"] = c.SecretHash
			fields["rotated_secret_expires_at"] = keepOldUntil.UTC()
		}
		return translate(s.conn(ctx).Model(&Client{}).Where("id = ?", id).Updates(fields).Error)
	})
}

// assertionClientKey carries the id of the client whose assertion fosite
// is checking: fosite's jti calls name only the jti.
type assertionClientKey struct{}

// WithAssertionClient names the client whose client assertion is being
// verified. ClientAssertionJWTValid and SetClientAssertionJWT remember jtis
// per client, so one client's jtis never block another's, and refuse to
// work without it.
func WithAssertionClient(ctx context.Context, clientID string) context.Context {
	return context.WithValue(ctx, assertionClientKey{}, clientID)
}

var errNoAssertionClient = errors.New("storage: client assertion jti checked without naming its client")

// assertionJTIKey is the replay-cache key of a client's jti; the length
// prefix keeps ("a:b", "c") and ("a", "b:c") apart.
func assertionJTIKey(ctx context.Context, jti string) (string, error) {
	id, _ := ctx.Value(assertionClientKey{}).(string)
	if id == "" {
		return "", errNoAssertionClient
	}
	return fmt.Sprintf("%d:%s:%s", len(id), id, jti), nil
}

// ClientAssertionJWTValid fails with fosite.ErrJTIKnown for a jti the
// client (WithAssertionClient) already used and that has not yet expired.
func (s *Store) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	key, err := assertionJTIKey(ctx, jti)
	if err != nil {
		return err
	}
	var n int64
	err = s.conn(ctx).Table("seen_jtis").
		Where("jti_hash = ? AND expires_at > ?", hashKey("client-assertion", key), s.now()).Count(&n).Error
	if err != nil {
		return translate(err)
	}
	if n > 0 {
		return fosite.ErrJTIKnown
	}
	return nil
}

// SetClientAssertionJWT records the client's jti until exp; a concurrent
// duplicate loses.
func (s *Store) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	key, err := assertionJTIKey(ctx, jti)
	if err != nil {
		return err
	}
	err = s.MarkJTI(ctx, "client-assertion", key, exp)
	if errors.Is(err, ErrReplay) {
		return fosite.ErrJTIKnown
	}
	return err
}

// CountClients returns how many clients exist.
func (s *Store) CountClients(ctx context.Context) (int64, error) {
	var n int64
	err := s.conn(ctx).Model(&Client{}).Count(&n).Error
	return n, translate(err)
}

// CORSOriginRegistered reports whether any client lists origin in its
// allowed_cors_origins. A CORS preflight names no client, so this is what
// decides it. The list is stored as JSON text; origins are validated to
// plain scheme://host[:port] strings, which JSON writes unescaped, so the
// quoted origin is an exact substring of the text of every client holding
// it (LIKE's own wildcards escaped).
func (s *Store) CORSOriginRegistered(ctx context.Context, origin string) (bool, error) {
	if origin == "" || strings.ContainsAny(origin, "\"\\") {
		return false, nil
	}
	esc := strings.NewReplacer(`!`, `!!`, `%`, `!%`, `_`, `!_`).Replace(origin)
	var ids []string
	err := s.conn(ctx).Model(&Client{}).Where("allowed_cors_origins LIKE ? ESCAPE '!'", `%"`+esc+`"%`).
		Limit(1).Pluck("id", &ids).Error
	if err != nil {
		return false, translate(err)
	}
	return len(ids) > 0, nil
}
