package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"

	"github.com/latchhq/latch/migrations"
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

	// Ascending lists oldest first, for an exporter that follows the log.
	// After is its cursor: only events with a larger id qualify.
	Ascending bool
	After     int64
	// SettledBefore, with Ascending, ends the list at the first event
	// stamped at or after it. A row's id is drawn when its insert starts but
	// the row is visible only once it commits, so a younger row can be read
	// while an older id is still in flight; an exporter that jumped past it
	// would never see it. Once every insert stamped before this time has
	// committed or failed, no id below the last one returned can appear.
	SettledBefore time.Time
}

// InsertAudit appends an event; a zero time is the store's now. Inside a
// transaction, under WithAuditBound, the transaction must commit within
// that bound of this insert or it is rolled back (see auditCommitDue).
func (s *Store) InsertAudit(ctx context.Context, e *AuditEvent) error {
	stampAudit(e, s.now())
	if err := translate(s.conn(ctx).Create(e).Error); err != nil {
		return err
	}
	if a, ok := ctx.Value(txAuditKey{}).(*txAudit); ok {
		if d, ok := ctx.Value(auditBoundKey{}).(time.Duration); ok && d > 0 {
			a.commitBy(time.Now().Add(d))
		}
	}
	return nil
}

type auditBoundKey struct{}

// WithAuditBound asks InsertAudit, inside a transaction, to hold that
// transaction to committing within d of the insert. The export cursor
// (AuditFilter.SettledBefore) needs every audit row to commit or vanish
// within a bound of drawing its id, as the group commit's inserts and a
// grant's row (PendingAudit.Within) do; a row written by approve, resume or
// any other transaction is bound here.
func WithAuditBound(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, auditBoundKey{}, d)
}

type txAuditKey struct{}

// txAudit is when the transaction it belongs to must commit by, for the
// audit rows it holds; zero when it holds none under a bound.
type txAudit struct {
	mu sync.Mutex
	by time.Time
}

func (a *txAudit) commitBy(t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.by.IsZero() || t.Before(a.by) {
		a.by = t
	}
}

// ErrAuditLate is a transaction refused at commit because an audit row it
// holds would commit past its bound, where the export cursor may already
// have passed its id. Nothing of the transaction is stored.
var ErrAuditLate = errors.New("storage: the transaction's audit row could not commit within its bound; nothing was stored")

// auditCommitDue reports whether the transaction under ctx may still send
// COMMIT: a transaction whose COMMIT is never sent does not commit, so an
// audit row it holds cannot appear behind the export cursor. (The wall
// clock, not the store's: the bound is about real commit latency.)
func auditCommitDue(ctx context.Context) error {
	a, ok := ctx.Value(txAuditKey{}).(*txAudit)
	if !ok {
		return nil
	}
	a.mu.Lock()
	by := a.by
	a.mu.Unlock()
	if !by.IsZero() && time.Now().After(by) {
		return ErrAuditLate
	}
	return nil
}

func stampAudit(e *AuditEvent, now time.Time) {
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC()
	if e.Details == nil {
		e.Details = map[string]any{}
	}
}

// PendingAudit is a grant's success event, written by the store in the
// transaction that stores the grant's access token, so that token rows and
// event commit or roll back together: one commit per grant rather than one
// for the tokens and another for the event. audit.Recorder.Pending makes
// one; whatever no store wrote (Written), the recorder records itself.
type PendingAudit struct {
	Event *AuditEvent
	// Complete runs just before the row is written, for what is known
	// only once the tokens are (a code exchange grants the code's scopes
	// while it issues them).
	Complete func(*AuditEvent)
	// Within bounds the insert up to the COMMIT after it (see
	// writePending); zero leaves it unbounded.
	Within time.Duration

	tx      *gorm.DB // the transaction holding the grant's access token
	written bool
}

type pendingAuditKey struct{}

// WithPendingAudit has the store write p with the next access token
// stored under ctx (CreateAccessTokenSession), in that token's transaction.
func WithPendingAudit(ctx context.Context, p *PendingAudit) context.Context {
	return context.WithValue(ctx, pendingAuditKey{}, p)
}

// Written reports whether a committed transaction holds p's row.
func (p *PendingAudit) Written() bool { return p != nil && p.written }

func pendingAudit(ctx context.Context) *PendingAudit {
	p, _ := ctx.Value(pendingAuditKey{}).(*PendingAudit)
	return p
}

// writePending inserts p's row into tx as its last statement before
// COMMIT. The export cursor (AuditFilter.SettledBefore) needs every insert
// to commit or fail within a bound of drawing its id, as the recorder's
// group commit does: the insert runs under p.Within, and COMMIT is sent
// only if that bound still holds. Past it, the connection has been closed
// or the caller rolls back, and a transaction whose COMMIT never arrived
// does not commit.
func (s *Store) writePending(ctx context.Context, tx *gorm.DB, p *PendingAudit) error {
	if p.Complete != nil {
		p.Complete(p.Event)
	}
	stampAudit(p.Event, s.now())
	if p.Within > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Within)
		defer cancel()
	}
	if err := tx.WithContext(ctx).Create(p.Event).Error; err != nil {
		return fmt.Errorf("storage: audit row of the grant: %w", translate(err))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage: audit row of the grant: %w", err)
	}
	return nil
}

// ListAudit returns matching events newest first (by id, which only grows),
// or oldest first when f.Ascending.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	q := s.conn(ctx).Order("id DESC")
	if f.Ascending {
		q = s.conn(ctx).Order("id ASC")
	}
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
	if f.After > 0 {
		q = q.Where("id > ?", f.After)
	}
	var out []AuditEvent
	if err := q.Find(&out).Error; err != nil {
		return nil, translate(err)
	}
	if f.Ascending && !f.SettledBefore.IsZero() {
		// A prefix, not a filter on time: a row stamped late but numbered
		// low must stop the page, or the cursor would move past it.
		for i, e := range out {
			if !e.Time.Before(f.SettledBefore) {
				return out[:i], nil
			}
		}
	}
	return out, nil
}

// InsertAudits writes several events in one statement (the audit recorder's
// group commit). A deadline on ctx ends the insert on the server too: see
// cancelOnServer.
func (s *Store) InsertAudits(ctx context.Context, events []*AuditEvent) error {
	now := s.now()
	for _, e := range events {
		stampAudit(e, now)
	}
	return s.bounded(ctx, func(db *gorm.DB) error { return db.Create(events).Error })
}

// bounded runs one statement that writes audit rows outside a transaction.
// When ctx has a deadline on PostgreSQL, the statement ends on the server
// by then too (cancelOnServer), so it commits by its deadline or not at all.
func (s *Store) bounded(ctx context.Context, statement func(db *gorm.DB) error) error {
	if _, ok := ctx.Deadline(); !ok || s.dialect != migrations.Postgres || InTransaction(ctx) {
		return translate(statement(s.conn(ctx)))
	}
	return translate(s.db.WithContext(ctx).Connection(func(tx *gorm.DB) error {
		return cancelOnServer(ctx, tx, func() error { return statement(tx) })
	}))
}

// cancelOnServer runs query on tx's dedicated PostgreSQL connection and,
// if ctx ends first, sends the server a cancel request. pgx only closes its
// socket when a context ends; the backend would go on, and an insert
// waiting on a lock would commit whenever the lock came free, long after its
// caller gave up (the audit export cursor relies on inserts that end by
// their deadline).
func cancelOnServer(ctx context.Context, tx *gorm.DB, query func() error) error {
	conn, ok := tx.Statement.ConnPool.(*sql.Conn)
	if !ok {
		return errors.New("storage: cancelOnServer needs a dedicated connection")
	}
	var pg *pgconn.PgConn
	if err := conn.Raw(func(dc any) error {
		if c, ok := dc.(*stdlib.Conn); ok {
			pg = c.Conn().PgConn()
		}
		return nil
	}); err != nil {
		return fmt.Errorf("storage: reach the PostgreSQL connection: %w", err)
	}
	if pg == nil {
		return query()
	}
	sent := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(sent)
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = pg.CancelRequest(cctx)
	})
	err := query()
	if !stop() {
		// The cancel may reach the backend after query ended; a pooled
		// connection must not carry it into someone else's statement.
		<-sent
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return err
}
