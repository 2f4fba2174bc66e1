package audit_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/storage"
)

// A grant's event is written once: by the store in the grant's transaction,
// or else by the recorder after the grant, never both and never neither.
func TestPendingEventWrittenOnce(t *testing.T) {
	ctx := audit.WithIP(context.Background(), "192.0.2.1")
	s, err := storage.Open("sqlite://"+filepath.Join(t.TempDir(), "latch.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	client := &storage.Client{ID: "c1"}
	if err := s.CreateClient(ctx, client); err != nil {
		t.Fatal(err)
	}
	rec := audit.New(s, nil)
	count := func(user string) int {
		t.Helper()
		evs, err := s.ListAudit(ctx, storage.AuditFilter{Subject: user})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.IP != "192.0.2.1" || e.Outcome != audit.Success || e.Details["grant_type"] != "client_credentials" {
				t.Errorf("event %+v lacks the request's IP, outcome or completed details", e)
			}
		}
		return len(evs)
	}
	complete := func(e *storage.AuditEvent) { e.Details = map[string]any{"grant_type": "client_credentials"} }

	// The store writes it with the token; the recorder then does not.
	gctx, p := rec.Pending(ctx, audit.Event{Name: audit.TokenIssued, User: "stored"}, complete)
	req := fosite.NewRequest()
	req.Client, req.Session = client, openid.NewDefaultSession()
	if err := s.CreateAccessTokenSession(gctx, "at", req); err != nil {
		t.Fatal(err)
	}
	rec.RecordPending(ctx, p)
	if n := count("stored"); n != 1 {
		t.Errorf("event written by the store: %d rows, want 1", n)
	}

	// No store reached its commit point: the recorder writes it.
	_, p = rec.Pending(ctx, audit.Event{Name: audit.TokenIssued, User: "recorded"}, complete)
	rec.RecordPending(ctx, p)
	if n := count("recorded"); n != 1 {
		t.Errorf("event the store never saw: %d rows, want 1", n)
	}

	var none *audit.Recorder
	if got, p := none.Pending(ctx, audit.Event{Name: audit.TokenIssued}, nil); got != ctx || p != nil {
		t.Error("a nil recorder attached a pending event")
	}
	none.RecordPending(ctx, nil)
}
