package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm/clause"

	"github.com/latchhq/latch/migrations"
)

// SessionGrant is one grant issued under a login session: the client that
// received it and the token family (request id) it started.
type SessionGrant struct {
	SID       string    `gorm:"column:sid;primaryKey"`
	RequestID string    `gorm:"column:request_id;primaryKey"`
	ClientID  string    `gorm:"column:client_id"`
	Subject   string    `gorm:"column:subject"`
	Offline   bool      `gorm:"column:offline"`
	CreatedAt time.Time `gorm:"column:created_at"`
	ExpiresAt time.Time `gorm:"column:expires_at"`
}

func (SessionGrant) TableName() string { return "login_session_grants" }

// RecordSessionGrant notes that g.ClientID received a grant under the login
// session g.SID. Inside the transaction that stores the code, the note and
// the code commit together.
func (s *Store) RecordSessionGrant(ctx context.Context, g *SessionGrant) error {
	g.CreatedAt = s.now()
	return translate(s.conn(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(g).Error)
}

// SessionSelector picks the login sessions to end: by the browser's cookie
// hash, by sid (with the subject it must belong to), or every session of a
// subject. Exactly one way must be given.
type SessionSelector struct {
	IDHash  string
	SID     string
	Subject string
}

// EndedSession is a login session that was ended and the grants issued
// under it.
type EndedSession struct {
	LoginSession
	Grants []SessionGrant
}

// EndLoginSessions deletes the selected login sessions and their grant
// notes and returns them. Run it in a transaction with what follows from
// the end (logout deliveries, revocations), so either all of it happens or
// none does; of two concurrent calls for one session only one returns it.
func (s *Store) EndLoginSessions(ctx context.Context, sel SessionSelector) ([]EndedSession, error) {
	q := s.conn(ctx).Model(&LoginSession{})
	switch {
	case sel.IDHash != "":
		q = q.Where("id_hash = ?", sel.IDHash)
	case sel.SID != "" && sel.Subject != "":
		q = q.Where("sid = ? AND subject = ?", sel.SID, sel.Subject)
	case sel.Subject != "" && sel.SID == "":
		q = q.Where("subject = ?", sel.Subject)
	default:
		return nil, errors.New("storage: a session selector needs a cookie hash, a sid with its subject, or a subject")
	}
	// DELETE ... RETURNING makes the deletion itself the claim: a
	// concurrent end of the same session gets nothing back.
	var ended []LoginSession
	if err := q.Clauses(clause.Returning{}).Delete(&ended).Error; err != nil {
		return nil, fmt.Errorf("end login sessions: %w", translate(err))
	}
	if len(ended) == 0 {
		return nil, nil
	}
	sids := make([]string, 0, len(ended))
	for _, l := range ended {
		if l.SID != "" {
			sids = append(sids, l.SID)
		}
	}
	var grants []SessionGrant
	if len(sids) > 0 {
		if err := s.conn(ctx).Clauses(clause.Returning{}).Where("sid IN ?", sids).Delete(&grants).Error; err != nil {
			return nil, fmt.Errorf("end login sessions: grants: %w", translate(err))
		}
	}
	out := make([]EndedSession, len(ended))
	for i, l := range ended {
		out[i].LoginSession = l
		for _, g := range grants {
			if g.SID == l.SID && l.SID != "" {
				out[i].Grants = append(out[i].Grants, g)
			}
		}
	}
	return out, nil
}

// LogoutDelivery is one back-channel logout token waiting to be sent. ID
// is the token's jti.
type LogoutDelivery struct {
	ID            string     `gorm:"column:id;primaryKey"`
	ClientID      string     `gorm:"column:client_id"`
	Subject       string     `gorm:"column:subject"`
	SID           string     `gorm:"column:sid"`
	Attempts      int        `gorm:"column:attempts"`
	NextAttemptAt time.Time  `gorm:"column:next_attempt_at"`
	LeasedUntil   *time.Time `gorm:"column:leased_until"`
	LeaseToken    string     `gorm:"column:lease_token"`
	LastError     string     `gorm:"column:last_error"`
	CreatedAt     time.Time  `gorm:"column:created_at"`
}

func (LogoutDelivery) TableName() string { return "logout_deliveries" }

// EnqueueLogoutDeliveries stores deliveries due now.
func (s *Store) EnqueueLogoutDeliveries(ctx context.Context, ds []LogoutDelivery) error {
	if len(ds) == 0 {
		return nil
	}
	now := s.now()
	for i := range ds {
		ds[i].CreatedAt, ds[i].NextAttemptAt, ds[i].Attempts = now, now, 0
		ds[i].LeasedUntil, ds[i].LeaseToken = nil, ""
	}
	return translate(s.conn(ctx).Create(&ds).Error)
}

// ClaimLogoutDelivery leases one due delivery for lease under leaseToken
// and counts the attempt; ErrNotFound when none is due. A row is due
// when its next attempt has come and no live lease holds it, so a
// delivery whose instance died becomes due again when its lease runs out.
// On PostgreSQL concurrent claimers skip each other's rows (FOR UPDATE
// SKIP LOCKED); SQLite runs one writer at a time. Either way one row goes
// to one claimer.
func (s *Store) ClaimLogoutDelivery(ctx context.Context, leaseToken string, lease time.Duration) (*LogoutDelivery, error) {
	now := s.now()
	pick := "SELECT id FROM logout_deliveries WHERE next_attempt_at <= ? AND (leased_until IS NULL OR leased_until <= ?) ORDER BY next_attempt_at LIMIT 1"
	if s.dialect == migrations.Postgres {
		pick += " FOR UPDATE SKIP LOCKED"
	}
	var d LogoutDelivery
	// The outer condition repeats the lease test, so a claimer that waited
	// on the row lock re-checks it against the committed row instead of
	// trusting its sub-select's snapshot.
	res := s.conn(ctx).Raw("UPDATE logout_deliveries SET leased_until = ?, lease_token = ?, attempts = attempts + 1 WHERE id = ("+pick+") AND (leased_until IS NULL OR leased_until <= ?) RETURNING *",
		now.Add(lease), leaseToken, now, now, now).Scan(&d)
	if res.Error != nil {
		return nil, fmt.Errorf("claim logout delivery: %w", translate(res.Error))
	}
	if res.RowsAffected == 0 || d.ID == "" {
		return nil, fmt.Errorf("no logout delivery due: %w", ErrNotFound)
	}
	return &d, nil
}

// FinishLogoutDelivery removes a delivery the caller still holds the lease
// of; ErrStateConflict when the lease was lost (another instance may have
// taken the row over), so the caller does not report a second outcome.
func (s *Store) FinishLogoutDelivery(ctx context.Context, id, leaseToken string) error {
	res := s.conn(ctx).Where("id = ? AND lease_token = ?", id, leaseToken).Delete(&LogoutDelivery{})
	if res.Error != nil {
		return fmt.Errorf("finish logout delivery: %w", translate(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%w: logout delivery lease lost", ErrStateConflict)
	}
	return nil
}

// RetryLogoutDelivery releases a held delivery to be tried again at next.
func (s *Store) RetryLogoutDelivery(ctx context.Context, id, leaseToken string, next time.Time, lastError string) error {
	if len(lastError) > 500 {
		lastError = lastError[:500]
	}
	res := s.conn(ctx).Model(&LogoutDelivery{}).Where("id = ? AND lease_token = ?", id, leaseToken).
		Updates(map[string]any{"next_attempt_at": next.UTC(), "leased_until": nil, "lease_token": "", "last_error": lastError})
	if res.Error != nil {
		return fmt.Errorf("retry logout delivery: %w", translate(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%w: logout delivery lease lost", ErrStateConflict)
	}
	return nil
}

// PendingLogoutDeliveries lists queued deliveries, oldest first (for
// operators and tests).
func (s *Store) PendingLogoutDeliveries(ctx context.Context) ([]LogoutDelivery, error) {
	var out []LogoutDelivery
	if err := s.conn(ctx).Order("created_at, id").Find(&out).Error; err != nil {
		return nil, translate(err)
	}
	return out, nil
}
