package storage

import (
	"context"
	"time"
)

// AuditEvent is one row of the audit trail. Details hold ids, scopes and
// reasons, never a secret or token.
type AuditEvent struct {
	ID        int64          `gorm:"column:id;primaryKey;autoIncrement" json:"id"`
	Time      time.Time      `gorm:"column:time" json:"time"`
	Event     string         `gorm:"column:event" json:"event"`
	ActorType string         `gorm:"column:actor_type" json:"actor_type,omitempty"`
	ActorID   string         `gorm:"column:actor_id" json:"actor_id,omitempty"`
	Subject   string         `gorm:"column:subject" json:"user,omitempty"`
	ClientID  string         `gorm:"column:client_id" json:"client_id,omitempty"`
	IP        string         `gorm:"column:ip" json:"ip,omitempty"`
	Outcome   string         `gorm:"column:outcome" json:"outcome"`
	Details   map[string]any `gorm:"column:details;serializer:json" json:"details,omitempty"`
}

func (AuditEvent) TableName() string { return "audit_events" }

// AuditFilter selects audit events; zero fields do not filter.
type AuditFilter struct {
	Subject  string
	ClientID string
	Event    string
	Since    time.Time // inclusive
	Until    time.Time // exclusive
	// Before is a cursor: only events with a smaller id (older) qualify.
	Before int64
	Limit  int
}

// InsertAudit appends an event; a zero time is the store's now.
func (s *Store) InsertAudit(ctx context.Context, e *AuditEvent) error {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	e.Time = e.Time.UTC()
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	return translate(s.conn(ctx).Create(e).Error)
}

// ListAudit returns matching events newest first (by id, which only grows).
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	q := s.conn(ctx).Order("id DESC")
	if f.Limit > 0 {
		q = q.Limit(f.Limit)
	}
	for col, v := range map[string]string{"subject": f.Subject, "client_id": f.ClientID, "event": f.Event} {
		if v != "" {
			q = q.Where(col+" = ?", v)
		}
	}
	if !f.Since.IsZero() {
		q = q.Where("time >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		q = q.Where("time < ?", f.Until.UTC())
	}
	if f.Before > 0 {
		q = q.Where("id < ?", f.Before)
	}
	var out []AuditEvent
	if err := q.Find(&out).Error; err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// InsertAudits writes several events in one statement (the audit recorder's
// group commit).
func (s *Store) InsertAudits(ctx context.Context, events []*AuditEvent) error {
	now := s.now()
	for _, e := range events {
		if e.Time.IsZero() {
			e.Time = now
		}
		e.Time = e.Time.UTC()
		if e.Details == nil {
			e.Details = map[string]any{}
		}
	}
	return translate(s.conn(ctx).Create(events).Error)
}
