package storage

import (
	"context"
	"time"

	"github.com/latchhq/latch/migrations"
)

// rotationLockID names the PostgreSQL advisory lock that serialises
// signing-key rotation across instances ("latchkey" in ASCII).
const rotationLockID = 0x6c617463686b6579

// LockSigningKeys serialises key rotation across instances until the
// transaction carried by ctx ends. SQLite needs nothing more: its
// transactions take the write lock at BEGIN (_txlock=immediate).
func (s *Store) LockSigningKeys(ctx context.Context) error {
	if s.dialect != migrations.Postgres {
		return nil
	}
	return translate(s.conn(ctx).Exec("SELECT pg_advisory_xact_lock(?)", int64(rotationLockID)).Error)
}

// NewestSigningKeyActivation is when the newest key of alg (retired or not)
// starts signing; zero when there is none.
func (s *Store) NewestSigningKeyActivation(ctx context.Context, alg string) (time.Time, error) {
	var k SigningKey
	err := s.conn(ctx).Where("alg = ?", alg).Order("activates_at DESC").Limit(1).Find(&k).Error
	if err != nil {
		return time.Time{}, translate(err)
	}
	return k.ActivatesAt, nil
}

// AllSigningKeys returns every key, retired ones included (for rewrapping).
func (s *Store) AllSigningKeys(ctx context.Context) ([]SigningKey, error) {
	var out []SigningKey
	if err := s.conn(ctx).Order("activates_at, kid").Find(&out).Error; err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// SetSigningKeySealed replaces a key's sealed private part (rewrap).
func (s *Store) SetSigningKeySealed(ctx context.Context, kid, sealed string) error {
	return translate(s.conn(ctx).Model(&SigningKey{}).Where("kid = ?", kid).Update("private_sealed", sealed).Error)
}
