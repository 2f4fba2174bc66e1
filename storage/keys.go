package storage

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm/clause"

	"github.com/latchhq/latch/migrations"
)

// APIKey authorises the host app's calls to /api. Only a keyed hash of the
// key is stored.
type APIKey struct {
	ID        string     `gorm:"column:id;primaryKey" json:"id"`
	Name      string     `gorm:"column:name" json:"name"`
	Hash      string     `gorm:"column:hash" json:"-"`
	CreatedAt time.Time  `gorm:"column:created_at" json:"created_at"`
	RevokedAt *time.Time `gorm:"column:revoked_at" json:"revoked_at,omitempty"`
}

func (APIKey) TableName() string { return "api_keys" }

// CreateAPIKey stores a new key; the same hash twice is a conflict.
func (s *Store) CreateAPIKey(ctx context.Context, k *APIKey) error {
	k.CreatedAt = s.now()
	return translate(s.conn(ctx).Create(k).Error)
}

// APIKeyByHash finds an unrevoked key by its hash. The lookup is by an
// indexed hash of a 256-bit value, so it leaks nothing through timing.
func (s *Store) APIKeyByHash(ctx context.Context, hash string) (*APIKey, error) {
	var k APIKey
	if err := s.conn(ctx).Where("hash = ? AND revoked_at IS NULL", hash).Take(&k).Error; err != nil {
		return nil, translate(err)
	}
	return &k, nil
}

// ListAPIKeys returns every key, revoked ones included.
func (s *Store) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	var out []APIKey
	if err := s.conn(ctx).Order("created_at, id").Find(&out).Error; err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// RevokeAPIKey stops a key from working.
func (s *Store) RevokeAPIKey(ctx context.Context, id string) error {
	res := s.conn(ctx).Model(&APIKey{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", s.now())
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("api key %s: %w", id, ErrNotFound)
	}
	return nil
}

// SigningKey is a token-signing key pair; the private half is sealed with
// the master key before it reaches this struct.
type SigningKey struct {
	KID           string     `gorm:"column:kid;primaryKey"`
	Alg           string     `gorm:"column:alg"`
	PublicJWK     string     `gorm:"column:public_jwk"`
	PrivateSealed string     `gorm:"column:private_sealed"`
	CreatedAt     time.Time  `gorm:"column:created_at"`
	ActivatesAt   time.Time  `gorm:"column:activates_at"`
	RetiresAt     *time.Time `gorm:"column:retires_at"`
}

func (SigningKey) TableName() string { return "signing_keys" }

// ListSigningKeys returns every key not yet retired, oldest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	var out []SigningKey
	err := s.conn(ctx).Where("retires_at IS NULL OR retires_at > ?", s.now()).
		Order("activates_at, kid").Find(&out).Error
	if err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// InsertSigningKey stores a new key.
func (s *Store) InsertSigningKey(ctx context.Context, k *SigningKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now()
	}
	return translate(s.conn(ctx).Create(k).Error)
}

// RetireSigningKeys sets a retirement time on every key of alg activated
// before cutoff that has none yet (they keep verifying until then). Keys of
// other algorithms are untouched: rotating ES256 must not retire RS256.
func (s *Store) RetireSigningKeys(ctx context.Context, alg string, activatedBefore, retiresAt time.Time) error {
	return translate(s.conn(ctx).Model(&SigningKey{}).
		Where("alg = ? AND activates_at < ? AND retires_at IS NULL", alg, activatedBefore).
		Update("retires_at", retiresAt.UTC()).Error)
}

// Now is the store's clock, for callers that must agree with its expiry.
func (s *Store) Now() time.Time { return s.now() }

// PutAPIKey creates or replaces the key with k.ID (used for the key given
// in configuration, which may change between starts).
func (s *Store) PutAPIKey(ctx context.Context, k *APIKey) error {
	k.CreatedAt = s.now()
	return translate(s.conn(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.Assignments(map[string]any{"hash": k.Hash, "name": k.Name, "revoked_at": nil}),
	}).Create(k).Error)
}

// DeleteAPIKey removes a key row entirely.
func (s *Store) DeleteAPIKey(ctx context.Context, id string) error {
	return translate(s.conn(ctx).Where("id = ?", id).Delete(&APIKey{}).Error)
}

// APIKeyByHashAny finds a key by its hash, revoked or not (bootstrap must
// tell a revoked configured key from an absent one).
func (s *Store) APIKeyByHashAny(ctx context.Context, hash string) (*APIKey, error) {
	var k APIKey
	if err := s.conn(ctx).Where("hash = ?", hash).Take(&k).Error; err != nil {
		return nil, translate(err)
	}
	return &k, nil
}

// bootstrapLockID names the PostgreSQL advisory lock under which instances
// starting together take turns at bootstrap ("latchboo" in ASCII).
const bootstrapLockID = 0x6c61746368626f6f

// LockBootstrap serialises first-start work across instances until the
// transaction carried by ctx ends (SQLite: the transaction's write lock).
func (s *Store) LockBootstrap(ctx context.Context) error {
	if s.dialect != migrations.Postgres {
		return nil
	}
	return translate(s.conn(ctx).Exec("SELECT pg_advisory_xact_lock(?)", int64(bootstrapLockID)).Error)
}
