package storage

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm/clause"
)

// KeyMaterial is a secret sealed with the master key.
type KeyMaterial struct {
	Name      string    `gorm:"column:name;primaryKey"`
	Sealed    string    `gorm:"column:sealed"`
	CreatedAt time.Time `gorm:"column:created_at"`
}

func (KeyMaterial) TableName() string { return "key_material" }

// KeyMaterial loads one sealed secret; ErrNotFound when absent.
func (s *Store) KeyMaterial(ctx context.Context, name string) (string, error) {
	var k KeyMaterial
	if err := s.conn(ctx).Where("name = ?", name).Take(&k).Error; err != nil {
		return "", translate(err)
	}
	return k.Sealed, nil
}

// AddKeyMaterial stores a sealed secret unless one of that name exists:
// instances starting together on an empty database all read back the same
// winner.
func (s *Store) AddKeyMaterial(ctx context.Context, name, sealed string) error {
	return translate(s.conn(ctx).Clauses(clause.OnConflict{DoNothing: true}).
		Create(&KeyMaterial{Name: name, Sealed: sealed, CreatedAt: s.now()}).Error)
}

// AllKeyMaterial returns every sealed secret (for rewrapping).
func (s *Store) AllKeyMaterial(ctx context.Context) ([]KeyMaterial, error) {
	var out []KeyMaterial
	if err := s.conn(ctx).Order("name").Find(&out).Error; err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// SetKeyMaterialSealed replaces a secret's sealed form (rewrap).
func (s *Store) SetKeyMaterialSealed(ctx context.Context, name, sealed string) error {
	res := s.conn(ctx).Model(&KeyMaterial{}).Where("name = ?", name).Update("sealed", sealed)
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("key material %s: %w", name, ErrNotFound)
	}
	return nil
}

// HoldsData reports whether any signing key, client or API key exists: a
// database written before the data key existed has all its hashes keyed
// by the master key and must keep that key (see keys.LoadDataKey).
func (s *Store) HoldsData(ctx context.Context) (bool, error) {
	for _, table := range []string{"signing_keys", "clients", "api_keys"} {
		var n int64
		if err := s.conn(ctx).Table(table).Limit(1).Count(&n).Error; err != nil {
			return false, translate(err)
		}
		if n > 0 {
			return true, nil
		}
	}
	return false, nil
}
