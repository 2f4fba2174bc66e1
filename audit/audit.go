// Package audit records who did what to clients, keys, consents and tokens,
// for the operator's security review: one row per event with time, actor,
// user, client, IP and outcome, and never a secret or token.
package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/latchhq/latch/storage"
)

// Event names, as stored and as accepted by GET /api/audit?event=.
const (
	SessionCreated       = "session.created"
	SessionApproved      = "session.approved"
	SessionDenied        = "session.denied"
	CodeIssued           = "code.issued"
	CodeExchanged        = "code.exchanged"
	CodeReplayed         = "code.replayed"
	TokenIssued          = "token.issued"
	TokenRefreshed       = "token.refreshed"
	TokenReplayed        = "token.replayed"
	TokenRevoked         = "token.revoked"
	ClientCreated        = "client.created"
	ClientUpdated        = "client.updated"
	ClientDeleted        = "client.deleted"
	ClientSecretRotated  = "client.secret_rotated"
	AuthorizationRevoked = "authorization.revoked"
	KeyRotated           = "key.rotated"
	KeyRewrapped         = "key.rewrapped"
	APIKeyUsed           = "api_key.used"
	APIKeyFailed         = "api_key.failed"
	APIKeyCreated        = "api_key.created"
	APIKeyRevoked        = "api_key.revoked"
	SessionEnded         = "session.ended"
	LogoutDelivered      = "logout.delivered"
	LogoutFailed         = "logout.failed"
)

// Events lists every event name.
var Events = []string{
	SessionCreated, SessionApproved, SessionDenied, CodeIssued, CodeExchanged, CodeReplayed,
	TokenIssued, TokenRefreshed, TokenReplayed, TokenRevoked, ClientCreated, ClientUpdated,
	ClientDeleted, ClientSecretRotated, AuthorizationRevoked, KeyRotated, APIKeyUsed, APIKeyFailed,
	APIKeyCreated, APIKeyRevoked, KeyRewrapped, SessionEnded, LogoutDelivered, LogoutFailed,
}

// Outcomes.
const (
	Success = "success"
	Failure = "failure"
)

// Actor types.
const (
	ActorAPIKey = "api_key"
	ActorClient = "client"
	ActorUser   = "user"
	ActorCLI    = "cli"
)

// Store is where events go.
type Store interface {
	InsertAudit(ctx context.Context, e *storage.AuditEvent) error
	InsertAudits(ctx context.Context, events []*storage.AuditEvent) error
	ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error)
}

// Event is what a caller reports; actor and IP default to those carried by
// the context (see WithActor, WithIP).
type Event struct {
	Name      string
	ActorType string
	ActorID   string
	User      string
	ClientID  string
	Outcome   string // default Success
	Details   map[string]any
}

// DefaultExportSettle is audit.export_settle's default.
const DefaultExportSettle = 30 * time.Second

// Recorder writes events. A nil *Recorder records nothing, so optional
// wiring needs no checks at call sites.
type Recorder struct {
	store  Store
	log    *slog.Logger
	batch  *groupCommit
	settle time.Duration
	now    func() time.Time
}

// New builds a recorder with the default export settle window.
func New(store Store, log *slog.Logger) *Recorder {
	if log == nil {
		log = slog.Default()
	}
	r := &Recorder{store: store, log: log, batch: &groupCommit{insert: store.InsertAudits}, now: time.Now}
	return r.WithExportSettle(DefaultExportSettle, nil)
}

// WithExportSettle sets how old an event must be before the export cursor
// serves it, and the clock events are stamped with (nil keeps the current
// one). Inserts outside a transaction are cut off at a third of settle, so
// an id drawn by an insert cannot still commit once a younger event has
// settled: the rest covers a slow commit and clocks that differ between
// instances.
func (r *Recorder) WithExportSettle(settle time.Duration, now func() time.Time) *Recorder {
	if settle <= 0 {
		settle = DefaultExportSettle
	}
	r.settle = settle
	if now != nil {
		r.now = now
	}
	r.batch.timeout = settle / 3
	return r
}

type actorKey struct{}
type ipKey struct{}

type actor struct{ typ, id string }

// WithActor says who acts for the rest of the request.
func WithActor(ctx context.Context, typ, id string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor{typ, id})
}

// WithIP records the caller's address for the rest of the request.
func WithIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, ipKey{}, ip)
}

// Record stores e. A failure to record is logged, not returned: the audit
// trail must not turn a completed action into an error for its caller.
func (r *Recorder) Record(ctx context.Context, e Event) {
	if r == nil {
		return
	}
	r.write(ctx, r.row(ctx, e))
}

// Pending prepares a grant's success event for the store to write in the
// transaction that stores the grant's tokens (storage.PendingAudit), so the
// grant commits once. complete, when not nil, fills in what is known only
// when the row is written. The insert gets the same bound as the group
// commit's. After the grant, RecordPending.
func (r *Recorder) Pending(ctx context.Context, e Event, complete func(*storage.AuditEvent)) (context.Context, *storage.PendingAudit) {
	if r == nil {
		return ctx, nil
	}
	p := &storage.PendingAudit{Event: r.row(ctx, e), Complete: complete, Within: r.batch.timeout}
	return storage.WithPendingAudit(ctx, p), p
}

// RecordPending records a succeeded grant's event that no store wrote
// (a grant that never reached its commit point), so none is ever lost;
// one the store wrote is not written again.
func (r *Recorder) RecordPending(ctx context.Context, p *storage.PendingAudit) {
	if r == nil || p == nil || p.Written() {
		return
	}
	if p.Complete != nil {
		p.Complete(p.Event)
	}
	r.write(ctx, p.Event)
}

func (r *Recorder) row(ctx context.Context, e Event) *storage.AuditEvent {
	row := &storage.AuditEvent{
		Event: e.Name, ActorType: e.ActorType, ActorID: e.ActorID, Subject: e.User,
		ClientID: e.ClientID, Outcome: e.Outcome, Details: e.Details,
	}
	if a, ok := ctx.Value(actorKey{}).(actor); ok && row.ActorType == "" {
		row.ActorType, row.ActorID = a.typ, a.id
	}
	row.IP, _ = ctx.Value(ipKey{}).(string)
	if row.Outcome == "" {
		row.Outcome = Success
	}
	return row
}

func (r *Recorder) write(ctx context.Context, row *storage.AuditEvent) {
	// The caller's transaction may roll back; the event still happened.
	var err error
	if storage.InTransaction(ctx) {
		// Inside a transaction the event commits or rolls back with the
		// change it records (and another connection would wait on it).
		err = r.store.InsertAudit(storage.WithAuditBound(context.WithoutCancel(ctx), r.batch.timeout), row)
	} else {
		err = r.batch.write(row)
	}
	if err != nil {
		r.log.Error("audit: record event", "event", row.Event, "err", err)
	}
}

// SessionDecided implements approval.Events.
func (r *Recorder) SessionDecided(ctx context.Context, a *storage.AuthSession) {
	switch a.State {
	case storage.AuthApproved:
		r.Record(ctx, Event{Name: SessionApproved, User: a.Subject, ClientID: a.ClientID,
			Details: map[string]any{"scopes": a.GrantedScopes, "remember": a.Remember}})
	case storage.AuthDenied:
		r.Record(ctx, Event{Name: SessionDenied, ClientID: a.ClientID})
	}
}
