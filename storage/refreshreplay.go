package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Refresh reuse interval (SPEC §2). Rotation normally makes a spent refresh
// token worthless and its reuse revokes the grant family. Within the
// interval after a rotation, the same client (same DPoP key when bound)
// presenting the spent token again while its successor is unused gets the
// response the first presentation got: a retry after a lost response, or
// two tabs racing. The rotation records the spent token's signature, the
// client, the key and the successor in the same transaction that rotates,
// so a concurrent loser can always find it; the response itself (sealed by
// the caller under the data key) is stored right after.

// ErrRefreshRetry is GetRefreshTokenSession's answer for a spent refresh
// token that may still be retried: the caller serves the recorded response
// instead of fosite's reuse revocation.
var ErrRefreshRetry = errors.New("storage: spent refresh token within its reuse interval")

// RefreshReuse carries the reuse interval through one refresh request; the
// caller fills ClientID and JKT once known, the store Spent and Successor.
type RefreshReuse struct {
	Interval  time.Duration
	RequestID string
	ClientID  string
	JKT       string
	Spent     string
	Successor string
}

type refreshReuseKey struct{}

// WithRefreshReuse enables the reuse interval for the refresh under ctx.
func WithRefreshReuse(ctx context.Context, r *RefreshReuse) context.Context {
	return context.WithValue(ctx, refreshReuseKey{}, r)
}

func refreshReuseFrom(ctx context.Context) *RefreshReuse {
	r, _ := ctx.Value(refreshReuseKey{}).(*RefreshReuse)
	if r == nil || r.Interval <= 0 {
		return nil
	}
	return r
}

// RefreshReplay is a recorded rotation.
type RefreshReplay struct {
	Signature string    `gorm:"column:signature;primaryKey"`
	RequestID string    `gorm:"column:request_id"`
	ClientID  string    `gorm:"column:client_id"`
	JKT       string    `gorm:"column:jkt"`
	Successor string    `gorm:"column:successor"`
	Response  string    `gorm:"column:response"`
	ExpiresAt time.Time `gorm:"column:expires_at"`
}

func (RefreshReplay) TableName() string { return "refresh_replays" }

// recordRotation stores the rotation of r.Spent into signature, inside the
// rotation's transaction.
func (s *Store) recordRotation(ctx context.Context, r *RefreshReuse, successor string) error {
	r.Successor = successor
	row := RefreshReplay{Signature: r.Spent, RequestID: r.RequestID, ClientID: r.ClientID, JKT: r.JKT, Successor: successor,
		ExpiresAt: s.now().Add(r.Interval).UTC()}
	if err := s.conn(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("record refresh rotation: %w", translate(err))
	}
	return nil
}

// SealRefreshResponse stores the (sealed) token response of a recorded
// rotation.
func (s *Store) SealRefreshResponse(ctx context.Context, spent, sealed string) error {
	return translate(s.conn(ctx).Model(&RefreshReplay{}).Where("signature = ?", spent).Update("response", sealed).Error)
}

// RefreshReplay returns the recorded rotation of the spent refresh token
// signature while it may be retried: unexpired, and its successor still
// unused (active). ErrNotFound otherwise.
func (s *Store) RefreshReplay(ctx context.Context, signature string) (*RefreshReplay, error) {
	var rows []RefreshReplay
	err := s.conn(ctx).Table("refresh_replays AS r").Select("r.*").
		Joins("JOIN oauth2_tokens t ON t.kind = ? AND t.signature = r.successor AND t.active", kindRefresh).
		Where("r.signature = ? AND r.expires_at > ?", signature, s.now()).Limit(1).Scan(&rows).Error
	if err != nil {
		return nil, translate(err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("refresh replay: %w", ErrNotFound)
	}
	return &rows[0], nil
}
