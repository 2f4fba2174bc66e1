package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The auth session state machine: each step happens once, only from the
// right state, for the right browser, before expiry — whichever path (one
// round trip or the diagnosing one) the store takes. On PostgreSQL too when
// LATCH_TEST_POSTGRES_DSN names a database (UPDATE ... RETURNING differs).
func TestAuthSessionSteps(t *testing.T) {
	dsns := map[string]string{"sqlite": "sqlite://" + filepath.Join(t.TempDir(), "s.db")}
	if pg := os.Getenv("LATCH_TEST_POSTGRES_DSN"); pg != "" {
		dsns["postgres"] = pg
	}
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) { testAuthSessionSteps(t, dsn) })
	}
}

func testAuthSessionSteps(t *testing.T, dsn string) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	// Ids unique per run, so a shared PostgreSQL database can be reused.
	p := secretPrefix()
	s, err := Open(dsn, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, &Client{ID: p + "c"}); err != nil {
		t.Fatal(err)
	}
	newSession := func(id string, ttl time.Duration) {
		t.Helper()
		if err := s.CreateAuthSession(ctx, &AuthSession{ID: id, ClientID: p + "c", RequestForm: "a=b",
			RequestedScopes: []string{"openid"}, BrowserHash: "bh", ExpiresAt: now.Add(ttl)}); err != nil {
			t.Fatal(err)
		}
	}
	approve := Decision{Approve: true, Subject: "alice", GrantedScopes: []string{"openid"},
		Claims: map[string]any{"email": "a@example.com"}, AuthTime: now, ACR: "1", Verifier: "vf"}

	// Approve, then complete: the caller sees the decided session.
	newSession(p+"s1", time.Minute)
	d, err := s.DecideAuthSession(ctx, p+"s1", approve)
	if err != nil || d.State != AuthApproved || d.Subject != "alice" || d.Claims["email"] != "a@example.com" || d.RequestForm != "a=b" {
		t.Fatalf("decide: %+v, %v", d, err)
	}
	if _, err := s.DecideAuthSession(ctx, p+"s1", approve); !errors.Is(err, ErrStateConflict) {
		t.Errorf("second decision: %v, want state conflict", err)
	}
	if _, err := s.CompleteAuthSession(ctx, p+"s1", "other", "vf"); !errors.Is(err, ErrStateConflict) {
		t.Errorf("other browser: %v, want state conflict", err)
	}
	a, err := s.CompleteAuthSession(ctx, p+"s1", "bh", "vf")
	if err != nil || a.State != AuthApproved || a.Subject != "alice" || len(a.GrantedScopes) != 1 || a.AuthTime == nil || a.ACR != "1" {
		t.Fatalf("complete: %+v, %v", a, err)
	}
	if _, err := s.CompleteAuthSession(ctx, p+"s1", "bh", "vf"); !errors.Is(err, ErrStateConflict) {
		t.Errorf("second completion: %v, want state conflict", err)
	}

	// Deny, then complete: the caller sees the denial.
	newSession(p+"s2", time.Minute)
	if _, err := s.DecideAuthSession(ctx, p+"s2", Decision{ErrorDescription: "no", Verifier: "vf"}); err != nil {
		t.Fatal(err)
	}
	if a, err := s.CompleteAuthSession(ctx, p+"s2", "bh", "vf"); err != nil || a.State != AuthDenied || a.ErrorDescription != "no" {
		t.Fatalf("complete denied: %+v, %v", a, err)
	}

	// Not decided yet; unknown; expired.
	newSession(p+"s3", time.Minute)
	if _, err := s.CompleteAuthSession(ctx, p+"s3", "bh", "vf"); !errors.Is(err, ErrStateConflict) {
		t.Errorf("pending: %v, want state conflict", err)
	}
	if _, err := s.CompleteAuthSession(ctx, p+"nope", "bh", "vf"); !IsNotFound(err) {
		t.Errorf("unknown: %v, want not found", err)
	}
	if _, err := s.DecideAuthSession(ctx, p+"nope", approve); !IsNotFound(err) {
		t.Errorf("decide unknown: %v, want not found", err)
	}
	newSession(p+"s4", time.Minute)
	if _, err := s.DecideAuthSession(ctx, p+"s4", approve); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := s.CompleteAuthSession(ctx, p+"s4", "bh", "vf"); !errors.Is(err, ErrExpired) {
		t.Errorf("complete expired: %v, want expired", err)
	}
	if _, err := s.DecideAuthSession(ctx, p+"s3", approve); !errors.Is(err, ErrExpired) {
		t.Errorf("decide expired: %v, want expired", err)
	}
}

func secretPrefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b) + "-"
}
