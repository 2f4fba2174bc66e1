package conformance

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/storage"
)

// loginSession stores a login session for subject with the given sid.
func (f *fixture) loginSession(idHash, sid, subject string) {
	f.t.Helper()
	must(f.t, f.s.CreateLoginSession(f.ctx, &storage.LoginSession{
		IDHash: idHash, SID: sid, Subject: subject, AuthTime: f.clock.Now(), ExpiresAt: f.clock.Now().Add(time.Hour),
	}))
}

func (f *fixture) sessionGrant(sid, requestID, subject string, offline bool) {
	f.t.Helper()
	must(f.t, f.s.RecordSessionGrant(f.ctx, &storage.SessionGrant{
		SID: sid, RequestID: requestID, ClientID: f.client.ID, Subject: subject, Offline: offline,
		ExpiresAt: f.clock.Now().Add(time.Hour),
	}))
}

// testEndLoginSessions: ending sessions by cookie hash, by sid (only the
// named subject's) and by subject returns them with their grants, deletes
// both, and a second end finds nothing.
func testEndLoginSessions(t *testing.T, f *fixture) {
	f.loginSession("h1", "sid-1", "alice")
	f.loginSession("h2", "sid-2", "alice")
	f.loginSession("h3", "sid-3", "bob")
	f.sessionGrant("sid-1", "req-1", "alice", false)
	f.sessionGrant("sid-1", "req-2", "alice", true)
	f.sessionGrant("sid-1", "req-2", "alice", true) // recorded twice: kept once
	f.sessionGrant("sid-3", "req-3", "bob", false)

	if _, err := f.s.EndLoginSessions(f.ctx, storage.SessionSelector{SID: "sid-1"}); err == nil {
		t.Fatal("a sid without its subject must be refused")
	}
	ended, err := f.s.EndLoginSessions(f.ctx, storage.SessionSelector{SID: "sid-1", Subject: "bob"})
	if err != nil || len(ended) != 0 {
		t.Fatalf("sid of another subject ended %v (%v)", ended, err)
	}
	ended, err = f.s.EndLoginSessions(f.ctx, storage.SessionSelector{SID: "sid-1", Subject: "alice"})
	must(t, err)
	if len(ended) != 1 || ended[0].SID != "sid-1" || len(ended[0].Grants) != 2 {
		t.Fatalf("ended %+v: want sid-1 with its 2 grants", ended)
	}
	if _, err := f.s.LoginSession(f.ctx, "h1"); !storage.IsNotFound(err) {
		t.Fatalf("ended session still found: %v", err)
	}
	if n := f.count("login_session_grants", "sid = ?", "sid-1"); n != 0 {
		t.Fatalf("%d grant notes left for an ended session", n)
	}
	if again, _ := f.s.EndLoginSessions(f.ctx, storage.SessionSelector{IDHash: "h1"}); len(again) != 0 {
		t.Fatal("a session ended twice")
	}
	ended, err = f.s.EndLoginSessions(f.ctx, storage.SessionSelector{Subject: "alice"})
	must(t, err)
	if len(ended) != 1 || ended[0].IDHash != "h2" || len(ended[0].Grants) != 0 {
		t.Fatalf("ending alice's sessions: %+v", ended)
	}
	ended, err = f.s.EndLoginSessions(f.ctx, storage.SessionSelector{IDHash: "h3"})
	must(t, err)
	if len(ended) != 1 || len(ended[0].Grants) != 1 || ended[0].Grants[0].RequestID != "req-3" {
		t.Fatalf("ending by cookie hash: %+v", ended)
	}

	// Notes of sessions that ran out go with the janitor.
	f.loginSession("h4", "sid-4", "carol")
	f.sessionGrant("sid-4", "req-4", "carol", false)
	f.clock.Advance(2 * time.Hour)
	_, err = f.s.Purge(f.ctx, storage.JanitorOptions{})
	must(t, err)
	if n := f.count("login_session_grants", ""); n != 0 {
		t.Fatalf("%d grant notes of expired sessions left after a purge", n)
	}
}

func (f *fixture) enqueue(ids ...string) {
	f.t.Helper()
	var ds []storage.LogoutDelivery
	for _, id := range ids {
		ds = append(ds, storage.LogoutDelivery{ID: id, ClientID: f.client.ID, Subject: "alice", SID: "sid-" + id})
	}
	must(f.t, f.s.EnqueueLogoutDeliveries(f.ctx, ds))
}

// testLogoutQueue: a claim leases one due row and counts the attempt; a
// leased row is not claimed again until its lease runs out; only the lease
// holder finishes or reschedules it; a rescheduled row waits for its time.
func testLogoutQueue(t *testing.T, f *fixture) {
	if _, err := f.s.ClaimLogoutDelivery(f.ctx, "lease-0", time.Minute); !storage.IsNotFound(err) {
		t.Fatalf("claim from an empty queue: %v", err)
	}
	f.enqueue("d1")
	d, err := f.s.ClaimLogoutDelivery(f.ctx, "lease-a", 30*time.Second)
	must(t, err)
	if d.ID != "d1" || d.Attempts != 1 || d.SID != "sid-d1" || d.Subject != "alice" {
		t.Fatalf("claimed %+v", d)
	}
	if _, err := f.s.ClaimLogoutDelivery(f.ctx, "lease-b", 30*time.Second); !storage.IsNotFound(err) {
		t.Fatalf("a leased row was claimed again: %v", err)
	}

	// The holder dies: once the lease runs out another claimer takes the
	// row over, and the first holder can no longer report an outcome.
	f.clock.Advance(31 * time.Second)
	d2, err := f.s.ClaimLogoutDelivery(f.ctx, "lease-b", 30*time.Second)
	must(t, err)
	if d2.ID != "d1" || d2.Attempts != 2 {
		t.Fatalf("takeover claimed %+v", d2)
	}
	wantErr(t, "finish with a lost lease", f.s.FinishLogoutDelivery(f.ctx, "d1", "lease-a"), storage.ErrStateConflict)
	wantErr(t, "retry with a lost lease", f.s.RetryLogoutDelivery(f.ctx, "d1", "lease-a", f.clock.Now(), "x"), storage.ErrStateConflict)

	// Rescheduled: not due before its time, due after.
	must(t, f.s.RetryLogoutDelivery(f.ctx, "d1", "lease-b", f.clock.Now().Add(time.Minute), "receiver down"))
	if _, err := f.s.ClaimLogoutDelivery(f.ctx, "lease-c", 30*time.Second); !storage.IsNotFound(err) {
		t.Fatalf("claimed before its next attempt: %v", err)
	}
	f.clock.Advance(time.Minute)
	d3, err := f.s.ClaimLogoutDelivery(f.ctx, "lease-c", 30*time.Second)
	must(t, err)
	if d3.Attempts != 3 || d3.LastError != "receiver down" {
		t.Fatalf("after the retry: %+v", d3)
	}
	must(t, f.s.FinishLogoutDelivery(f.ctx, "d1", "lease-c"))
	if n := f.count("logout_deliveries", ""); n != 0 {
		t.Fatalf("%d rows left after finishing", n)
	}

	// Deleting the client drops what was queued for it.
	f.enqueue("d2")
	must(t, f.s.DeleteClient(f.ctx, f.client.ID))
	if n := f.count("logout_deliveries", ""); n != 0 {
		t.Fatalf("%d deliveries left for a deleted client", n)
	}
}

// testRaceClaimLogout: many claimers against many due rows; every row goes
// to exactly one of them.
func testRaceClaimLogout(t *testing.T, f *fixture) {
	const rows, claimers = 40, 8
	ids := make([]string, rows)
	for i := range ids {
		ids[i] = fmt.Sprintf("r%02d", i)
	}
	f.enqueue(ids...)
	var (
		mu    sync.Mutex
		owner = map[string]int{}
	)
	race(t, claimers, func(i int) error {
		for {
			d, err := f.s.ClaimLogoutDelivery(f.ctx, fmt.Sprintf("lease-%d", i), time.Minute)
			if storage.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			mu.Lock()
			owner[d.ID]++
			mu.Unlock()
			if err := f.s.FinishLogoutDelivery(f.ctx, d.ID, fmt.Sprintf("lease-%d", i)); err != nil {
				return err
			}
		}
	}, func(error) bool { return false })
	if len(owner) != rows {
		t.Fatalf("%d of %d rows claimed", len(owner), rows)
	}
	for id, n := range owner {
		if n != 1 {
			t.Errorf("row %s claimed %d times", id, n)
		}
	}
}

// testUserGrants: the connected-apps list holds clients with live tokens
// (remembered or not) and remembered consents, and drops a client whose
// tokens expired; the revoke-all list names every client with anything.
func testUserGrants(t *testing.T, f *fixture) {
	other := f.newClient("client-2")
	must(t, f.s.RememberAuthorization(f.ctx, "user-1", other.ID, []string{"openid"}))
	must(t, f.s.CreateAccessTokenSession(f.ctx, "at-1", f.request("req-1")))
	list, err := f.s.ListUserGrants(f.ctx, "user-1")
	must(t, err)
	if len(list) != 2 || list[0].ClientID != f.client.ID || list[1].ClientID != other.ID {
		t.Fatalf("listed %+v", list)
	}
	if g := list[0]; g.Remembered || !g.LiveTokens || len(g.Scopes) != 2 || g.CreatedAt != nil {
		t.Errorf("unremembered grant with live tokens: %+v", g)
	}
	if g := list[1]; !g.Remembered || g.LiveTokens || len(g.Scopes) != 1 || g.CreatedAt == nil {
		t.Errorf("remembered grant: %+v", g)
	}
	if list, _ := f.s.ListUserGrants(f.ctx, "user-2"); len(list) != 0 {
		t.Errorf("another user's list: %+v", list)
	}
	ids, err := f.s.UserGrantClients(f.ctx, "user-1")
	must(t, err)
	if len(ids) != 2 {
		t.Fatalf("clients with grants: %v", ids)
	}
	f.clock.Advance(2 * time.Hour) // the access token expires
	list, err = f.s.ListUserGrants(f.ctx, "user-1")
	must(t, err)
	if len(list) != 1 || list[0].ClientID != other.ID {
		t.Fatalf("after expiry: %+v", list)
	}
}
