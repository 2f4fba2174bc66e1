package approval_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchhq/latch/apierror"
	"github.com/latchhq/latch/approval"
	"github.com/latchhq/latch/resources"
	"github.com/latchhq/latch/scopes"
	"github.com/latchhq/latch/storage"
)

// failingRemember is the real store whose RememberAuthorizationAt writes
// and then fails while fail is set, as a lost connection after the write
// would.
type failingRemember struct {
	*storage.Store
	fail bool
}

func (f *failingRemember) RememberAuthorizationAt(ctx context.Context, subject, clientID, redirectURI string, scopes []string) error {
	if err := f.Store.RememberAuthorizationAt(ctx, subject, clientID, redirectURI, scopes); err != nil || !f.fail {
		return err
	}
	return errors.New("injected: connection lost after remembering")
}

// Approving with remember decides and remembers in one transaction: when
// remembering fails, the session is still pending (nothing remembered
// either), so the host app's retry approves it instead of meeting a 409.
func TestApproveAndRememberCommitTogether(t *testing.T) {
	ctx := context.Background()
	st, err := storage.Open("sqlite://"+filepath.Join(t.TempDir(), "a.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateClient(ctx, &storage.Client{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAuthSession(ctx, &storage.AuthSession{ID: "s1", ClientID: "c1", RequestForm: "a=b",
		RequestedScopes: []string{"openid"}, BrowserHash: "bh", ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	store := &failingRemember{Store: st, fail: true}
	svc := approval.New(store, scopes.New(nil), resources.New(nil, ""), "https://issuer.example", nil, nil)
	req := approval.ApproveRequest{User: "alice", Remember: true}

	_, err = svc.Approve(ctx, "s1", req)
	var ae *apierror.Error
	if !errors.As(err, &ae) || ae.Status != 500 {
		t.Fatalf("approve with a failing remember: %v, want a 500", err)
	}
	if a, err := st.AuthSession(ctx, "s1"); err != nil || a.State != storage.AuthPending {
		t.Fatalf("after the failure the session is %+v (%v), want still pending", a, err)
	}
	if _, err := st.Authorization(ctx, "alice", "c1"); !storage.IsNotFound(err) {
		t.Fatalf("after the failure the authorization: %v, want none", err)
	}

	store.fail = false
	if _, err := svc.Approve(ctx, "s1", req); err != nil {
		t.Fatalf("retry: %v, want approved", err)
	}
	if a, err := st.Authorization(ctx, "alice", "c1"); err != nil || len(a.Scopes) != 1 {
		t.Fatalf("remembered: %+v %v", a, err)
	}
}
