package apikeys_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/latchhq/latch/apikeys"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/secret"
	"github.com/latchhq/latch/storage"
)

// Every key event comes from the service, with the same shape whoever
// acts (server, first start, CLI): created with its source, revoked, used
// with the key as actor, failed.
func TestKeyEventsAreRecordedByTheService(t *testing.T) {
	ctx := context.Background()
	st, err := storage.Open("sqlite://"+filepath.Join(t.TempDir(), "k.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	svc := apikeys.New(st, secret.NewHasher([]byte("test-key")), audit.New(st, slog.New(slog.NewTextHandler(io.Discard, nil))))

	k, plain, err := svc.Create(ctx, "ops", apikeys.SourceCLI)
	if err != nil {
		t.Fatal(err)
	}
	adopted, err := svc.Adopt(ctx, "config", "LATCH_API_KEY", "latch_configured", apikeys.SourceConfig)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := svc.Find(ctx, "latch_configured"); err != nil || got.ID != adopted.ID {
		t.Fatalf("find adopted: %+v %v", got, err)
	}
	if got, err := svc.Check(ctx, plain, "GET", "/api/clients"); err != nil || got.ID != k.ID {
		t.Fatalf("check: %+v %v", got, err)
	}
	if _, err := svc.Check(ctx, "latch_guess", "GET", "/api/clients"); !errors.Is(err, apikeys.ErrInvalid) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := svc.Check(ctx, "", "GET", "/api/clients"); !errors.Is(err, apikeys.ErrMissing) {
		t.Fatalf("no key: %v", err)
	}
	if err := svc.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := svc.Revoke(ctx, k.ID); !storage.IsNotFound(err) {
		t.Fatalf("second revoke: %v", err)
	}
	if _, err := svc.Check(ctx, plain, "GET", "/api/clients"); !errors.Is(err, apikeys.ErrInvalid) {
		t.Fatalf("revoked key: %v", err)
	}

	evs, err := st.ListAudit(ctx, storage.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		got = append(got, e.Event+" "+e.Outcome+" "+e.ActorID+" "+str(e.Details["source"])+str(e.Details["api_key_id"]))
	}
	want := []string{
		"api_key.created success  cli" + k.ID,
		"api_key.created success  LATCH_API_KEYconfig",
		"api_key.used success " + k.ID + " ",
		"api_key.failed failure  ",
		"api_key.failed failure  ",
		"api_key.revoked success  " + k.ID,
		"api_key.failed failure  ",
	}
	if len(got) != len(want) {
		t.Fatalf("events:\n%q\nwant\n%q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: %q, want %q", i, got[i], want[i])
		}
	}
}

func str(v any) string { s, _ := v.(string); return s }
