package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchhq/latch/storage"
)

// testRefreshReplay: a rotation under a reuse interval is recorded with
// the rotation; the spent token then reads as retryable (ErrRefreshRetry,
// not ErrInactiveToken, so fosite does not revoke) exactly while the
// record is unexpired and its successor unused; the stored response comes
// back as stored.
func testRefreshReplay(t *testing.T, f *fixture) {
	r := &storage.RefreshReuse{Interval: 30 * time.Second, ClientID: f.client.ID, JKT: "jkt-1"}
	ctx := storage.WithRefreshReuse(f.ctx, r)
	must(t, f.s.CreateRefreshTokenSession(f.ctx, "rt-1", "", f.request("req-1")))
	must(t, f.s.InTx(ctx, func(ctx context.Context) error {
		if err := f.s.RotateRefreshToken(ctx, "req-1", "rt-1"); err != nil {
			return err
		}
		return f.s.CreateRefreshTokenSession(ctx, "rt-2", "", f.request("req-1"))
	}))
	if r.Spent != "rt-1" || r.Successor != "rt-2" || r.RequestID != "req-1" {
		t.Fatalf("rotation not recorded in the holder: %+v", r)
	}
	rec, err := f.s.RefreshReplay(f.ctx, "rt-1")
	must(t, err)
	if rec.ClientID != f.client.ID || rec.JKT != "jkt-1" || rec.Successor != "rt-2" || rec.RequestID != "req-1" || rec.Response != "" {
		t.Fatalf("record %+v", rec)
	}
	must(t, f.s.SealRefreshResponse(f.ctx, "rt-1", "sealed-response"))
	if rec, err = f.s.RefreshReplay(f.ctx, "rt-1"); err != nil || rec.Response != "sealed-response" {
		t.Fatalf("stored response: %v %+v", err, rec)
	}
	_, err = f.s.GetRefreshTokenSession(ctx, "rt-1", newSession())
	wantErr(t, "spent token within the interval", err, storage.ErrRefreshRetry)
	_, err = f.s.GetRefreshTokenSession(f.ctx, "rt-1", newSession())
	wantErr(t, "spent token, reuse not enabled for the request", err, fosite.ErrInactiveToken)

	// After the interval it is plain reuse again.
	f.clock.Advance(31 * time.Second)
	_, err = f.s.RefreshReplay(f.ctx, "rt-1")
	wantErr(t, "expired record", err, fosite.ErrNotFound)
	_, err = f.s.GetRefreshTokenSession(ctx, "rt-1", newSession())
	wantErr(t, "spent token after the interval", err, fosite.ErrInactiveToken)

	// Once the successor is used it is plain reuse too.
	must(t, f.s.CreateRefreshTokenSession(f.ctx, "rt-3", "", f.request("req-3")))
	r = &storage.RefreshReuse{Interval: time.Minute, ClientID: f.client.ID}
	ctx = storage.WithRefreshReuse(f.ctx, r)
	must(t, f.s.RotateRefreshToken(ctx, "req-3", "rt-3"))
	must(t, f.s.CreateRefreshTokenSession(ctx, "rt-4", "", f.request("req-3")))
	_, err = f.s.RefreshReplay(f.ctx, "rt-3")
	must(t, err)
	must(t, f.s.RotateRefreshToken(f.ctx, "req-3", "rt-4"))
	_, err = f.s.RefreshReplay(f.ctx, "rt-3")
	wantErr(t, "record whose successor was used", err, fosite.ErrNotFound)
	_, err = f.s.GetRefreshTokenSession(ctx, "rt-3", newSession())
	wantErr(t, "spent token whose successor was used", err, fosite.ErrInactiveToken)
}

// testCORSOrigins: an origin counts as registered only when some client
// lists it exactly; LIKE's wildcards in a lookup match nothing.
func testCORSOrigins(t *testing.T, f *fixture) {
	c := f.newClient("spa")
	c.AllowedCORSOrigins = []string{"https://spa.example", "http://localhost:5173"}
	must(t, f.s.UpdateClient(f.ctx, c))
	for origin, want := range map[string]bool{
		"https://spa.example": true, "http://localhost:5173": true,
		"https://spa.exampl": false, "https://spa.example.evil": false, "https://spa_example": false,
		"https://%": false, "%": false, "_": false, `https://spa.example"`: false, "": false,
	} {
		got, err := f.s.CORSOriginRegistered(f.ctx, origin)
		if err != nil || got != want {
			t.Errorf("CORSOriginRegistered(%q) = %v, %v; want %v", origin, got, err, want)
		}
	}
}
