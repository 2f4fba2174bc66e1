package storage_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchhq/latch/storage"
	"github.com/latchhq/latch/storage/pgtest"
)

// A grant's audit row commits with its token rows or not at all, exactly
// once, whether fosite opened the transaction (code and refresh grants) or
// the store opens its own (client_credentials).
func TestGrantAuditCommitsWithTokens(t *testing.T) {
	onBothBackends(t, testGrantAudit)
}

// onBothBackends runs test against a fresh SQLite store and a fresh
// PostgreSQL one.
func onBothBackends(t *testing.T, test func(t *testing.T, s *storage.Store)) {
	for name, dsn := range map[string]func(t *testing.T) string{
		"SQLite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "latch.db") },
		"Postgres": func(t *testing.T) string { return pgtest.DSN(t) },
	} {
		t.Run(name, func(t *testing.T) { test(t, openDSN(t, dsn(t), storage.Options{})) })
	}
}

func testGrantAudit(t *testing.T, s *storage.Store) {
	ctx := context.Background()
	client := &storage.Client{ID: "c1", Scope: "openid"}
	if err := s.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	n := 0
	newReq := func() *fosite.Request {
		n++
		r := fosite.NewRequest()
		r.Client, r.Session = client, openid.NewDefaultSession()
		r.GrantScope("openid")
		return r
	}
	pending := func(user string) (context.Context, *storage.PendingAudit) {
		p := &storage.PendingAudit{Event: &storage.AuditEvent{Event: "code.exchanged", Subject: user, Outcome: "success"},
			Complete: func(e *storage.AuditEvent) { e.Details = map[string]any{"completed": true} }, Within: 10 * time.Second}
		return storage.WithPendingAudit(ctx, p), p
	}
	rows := func(user string) []storage.AuditEvent {
		t.Helper()
		evs, err := s.ListAudit(ctx, storage.AuditFilter{Subject: user})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	active := func(sig string) bool {
		_, err := s.GetAccessTokenSession(ctx, sig, openid.NewDefaultSession())
		return err == nil
	}
	check := func(what, user, sig string, p *storage.PendingAudit, committed bool) {
		t.Helper()
		evs := rows(user)
		want := 0
		if committed {
			want = 1
		}
		if len(evs) != want || active(sig) != committed || p.Written() != committed {
			t.Fatalf("%s: %d audit rows, token stored %v, written %v; want %d, %v, %v",
				what, len(evs), active(sig), p.Written(), want, committed, committed)
		}
		if committed && (evs[0].Details["completed"] != true || evs[0].Time.IsZero()) {
			t.Fatalf("%s: row %+v was not completed and stamped when written", what, evs[0])
		}
	}

	// In fosite's transaction: rolled back, nothing; committed, both.
	pctx, p := pending("rolled-back")
	tx, err := s.BeginTX(pctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccessTokenSession(tx, "rb", newReq()); err != nil {
		t.Fatal(err)
	}
	// A statement failing after the token insert (the refresh token's
	// signature taken) fails the grant, and fosite rolls back.
	if err := s.CreateAccessTokenSession(tx, "rb", newReq()); !storage.IsConflict(err) {
		t.Fatalf("duplicate signature: %v, want a conflict", err)
	}
	if err := s.Rollback(tx); err != nil {
		t.Fatal(err)
	}
	check("failed after the token insert", "rolled-back", "rb", p, false)

	pctx, p = pending("committed")
	tx, err = s.BeginTX(pctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRefreshTokenSession(tx, "c-rt", "c-at", newReq()); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccessTokenSession(tx, "c-at", newReq()); err != nil {
		t.Fatal(err)
	}
	if evs := rows("committed"); len(evs) != 0 {
		t.Fatalf("audit row visible before the commit: %+v", evs)
	}
	if err := s.Commit(tx); err != nil {
		t.Fatal(err)
	}
	check("committed", "committed", "c-at", p, true)

	// Written once: a later token under the same context adds no row.
	if err := s.InTx(pctx, func(ctx context.Context) error { return s.CreateAccessTokenSession(ctx, "c-at2", newReq()) }); err != nil {
		t.Fatal(err)
	}
	check("a second token under the written event", "committed", "c-at", p, true)

	// A transaction that stores no access token (fosite's reuse
	// revocation, say) never writes the event.
	pctx, p = pending("no-token")
	if err := s.InTx(pctx, func(ctx context.Context) error { return s.CreateRefreshTokenSession(ctx, "nt-rt", "nt-at", newReq()) }); err != nil {
		t.Fatal(err)
	}
	check("transaction without an access token", "no-token", "nt-at", p, false)

	// client_credentials: no transaction of fosite's; the store opens one
	// (SQLite) or writes both rows in one statement (PostgreSQL).
	pctx, p = pending("cc")
	if err := s.CreateAccessTokenSession(pctx, "cc-at", newReq()); err != nil {
		t.Fatal(err)
	}
	check("client_credentials", "cc", "cc-at", p, true)
	pctx, p = pending("cc-failed")
	if err := s.CreateAccessTokenSession(pctx, "cc-at", newReq()); !storage.IsConflict(err) {
		t.Fatalf("duplicate signature: %v, want a conflict", err)
	}
	if evs := rows("cc-failed"); len(evs) != 0 || p.Written() {
		t.Fatalf("failed client_credentials grant left %d audit rows (written %v)", len(evs), p.Written())
	}

	// Past its bound, the row is not written and the grant fails: an
	// insert that could commit late would slip behind the export cursor.
	pctx, p = pending("late")
	p.Within = time.Nanosecond
	err = s.CreateAccessTokenSession(pctx, "late-at", newReq())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("insert past its bound: %v, want the deadline", err)
	}
	check("insert past its bound", "late", "late-at", p, false)
}

// An audit row written inside any transaction (approve, resume, a client
// change) holds that transaction to committing within its bound: past it,
// COMMIT is never sent and nothing of the transaction is stored, so the
// row cannot appear behind an export cursor that has moved on.
func TestAuditRowBoundsItsTransaction(t *testing.T) {
	onBothBackends(t, func(t *testing.T, s *storage.Store) {
		ctx := context.Background()
		write := func(client string, bound time.Duration, late bool) error {
			return s.InTx(ctx, func(ctx context.Context) error {
				if err := s.CreateClient(ctx, &storage.Client{ID: client}); err != nil {
					return err
				}
				e := &storage.AuditEvent{Event: "client.created", ClientID: client, Outcome: "success"}
				if err := s.InsertAudit(storage.WithAuditBound(ctx, bound), e); err != nil {
					return err
				}
				if late {
					time.Sleep(bound + 5*time.Millisecond)
				}
				return nil
			})
		}
		stored := func(client string) (rows int, exists bool) {
			t.Helper()
			evs, err := s.ListAudit(ctx, storage.AuditFilter{ClientID: client})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Client(ctx, client)
			return len(evs), err == nil
		}

		if err := write("in-time", time.Minute, false); err != nil {
			t.Fatalf("commit within the bound: %v", err)
		}
		if n, ok := stored("in-time"); n != 1 || !ok {
			t.Errorf("within the bound: %d audit rows, client stored %v; want 1, true", n, ok)
		}

		if err := write("late", 20*time.Millisecond, true); !errors.Is(err, storage.ErrAuditLate) {
			t.Fatalf("commit past the bound: %v, want ErrAuditLate", err)
		}
		if n, ok := stored("late"); n != 0 || ok {
			t.Errorf("past the bound: %d audit rows, client stored %v; want nothing stored", n, ok)
		}

		// Without a bound (an audit row the recorder did not write)
		// the transaction is not held to one.
		if err := s.InTx(ctx, func(ctx context.Context) error {
			return s.InsertAudit(ctx, &storage.AuditEvent{Event: "client.created", ClientID: "unbound", Outcome: "success"})
		}); err != nil {
			t.Fatalf("unbound: %v", err)
		}
	})
}

// On PostgreSQL client_credentials writes token and audit row in one
// statement under the audit bound. A statement that cannot finish in time
// is cancelled on the server, not just abandoned by the client: a backend
// left running would go on once it could and commit the row behind an
// export cursor that has moved on. Here another instance's uncommitted
// insert of the same token signature makes the statement wait on the
// unique index (at execution, after it was parsed) past its bound, and
// then rolls back, which would let an abandoned statement commit.
func TestClientCredentialsStatementCancelledOnServer(t *testing.T) {
	dsn := pgtest.DSN(t)
	s := openDSN(t, dsn, storage.Options{})
	other := openDSN(t, dsn, storage.Options{})
	ctx := context.Background()
	client := &storage.Client{ID: "worker"}
	if err := s.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	newReq := func() *fosite.Request {
		r := fosite.NewRequest()
		r.Client, r.Session = client, openid.NewDefaultSession()
		return r
	}
	blocker, err := other.BeginTX(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.CreateAccessTokenSession(blocker, "blocked-at", newReq()); err != nil {
		t.Fatal(err)
	}

	p := &storage.PendingAudit{Event: &storage.AuditEvent{Event: "token.issued", ClientID: "worker", Outcome: "success"},
		Within: 300 * time.Millisecond}
	err = s.CreateAccessTokenSession(storage.WithPendingAudit(ctx, p), "blocked-at", newReq())
	if err == nil || p.Written() {
		t.Fatalf("a grant blocked past its bound: err %v, written %v; want an error", err, p.Written())
	}
	if err := other.Rollback(blocker); err != nil {
		t.Fatal(err)
	}
	// A backend still running the statement now inserts and commits; give
	// it the time to.
	time.Sleep(500 * time.Millisecond)
	var tokens, events int64
	if err := other.DB().Raw(`SELECT count(*) FROM oauth2_tokens WHERE client_id = 'worker'`).Scan(&tokens).Error; err != nil {
		t.Fatal(err)
	}
	if err := other.DB().Raw(`SELECT count(*) FROM audit_events WHERE client_id = 'worker'`).Scan(&events).Error; err != nil {
		t.Fatal(err)
	}
	if tokens != 0 || events != 0 {
		t.Errorf("the abandoned statement committed after all: %d token rows, %d audit rows", tokens, events)
	}
}
