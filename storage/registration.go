package storage

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// RegistrationToken is an initial access token for dynamic registration
// (LATCH_REGISTRATION=token, RFC 7591 §3): only its hash is kept. MaxUses
// 0 means unlimited; a nil ExpiresAt never expires.
type RegistrationToken struct {
	ID        string     `gorm:"column:id;primaryKey" json:"id"`
	Hash      string     `gorm:"column:token_hash" json:"-"`
	MaxUses   int        `gorm:"column:max_uses" json:"max_uses"`
	Uses      int        `gorm:"column:uses" json:"uses"`
	ExpiresAt *time.Time `gorm:"column:expires_at" json:"expires_at"`
	CreatedAt time.Time  `gorm:"column:created_at" json:"created_at"`
}

func (RegistrationToken) TableName() string { return "registration_tokens" }

// CreateRegistrationToken stores a new initial access token.
func (s *Store) CreateRegistrationToken(ctx context.Context, t *RegistrationToken) error {
	t.CreatedAt = s.now().UTC()
	return translate(s.conn(ctx).Create(t).Error)
}

// ListRegistrationTokens returns every initial access token, newest first.
func (s *Store) ListRegistrationTokens(ctx context.Context) ([]RegistrationToken, error) {
	var out []RegistrationToken
	if err := s.conn(ctx).Order("created_at DESC, id").Find(&out).Error; err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// DeleteRegistrationToken revokes an initial access token.
func (s *Store) DeleteRegistrationToken(ctx context.Context, id string) error {
	res := s.conn(ctx).Where("id = ?", id).Delete(&RegistrationToken{})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("registration token %s: %w", id, ErrNotFound)
	}
	return nil
}

// UseRegistrationToken spends one use of the token with this hash, in one
// conditional statement, so concurrent registrations never exceed
// max_uses. Unknown, expired and used-up tokens are all ErrNotFound.
func (s *Store) UseRegistrationToken(ctx context.Context, hash string) error {
	res := s.conn(ctx).Model(&RegistrationToken{}).
		Where("token_hash = ? AND (max_uses = 0 OR uses < max_uses) AND (expires_at IS NULL OR expires_at > ?)", hash, s.now().UTC()).
		Update("uses", gorm.Expr("uses + 1"))
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("registration token: %w", ErrNotFound)
	}
	return nil
}

// MarkClientObtainedToken records that a dynamically registered client
// has obtained a token, which exempts it from idle deletion; once.
func (s *Store) MarkClientObtainedToken(ctx context.Context, id string) error {
	return translate(s.conn(ctx).Model(&Client{}).Where("id = ? AND dynamic = ? AND obtained_token = ?", id, true, false).
		Update("obtained_token", true).Error)
}
