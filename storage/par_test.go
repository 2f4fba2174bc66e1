package storage_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchhq/latch/provider"
	"github.com/latchhq/latch/storage"
)

// TestPARExpiryAndSingleUse: fosite never checks a pushed request's expiry,
// so storage refuses expired ones; of concurrent redemptions exactly one
// wins.
func TestPARExpiryAndSingleUse(t *testing.T) {
	now := time.Now().UTC()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, err := storage.Open("sqlite://"+filepath.Join(t.TempDir(), "par.db"), storage.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Redemptions name the client, as the authorization endpoint does.
	ctx := storage.WithPARClient(context.Background(), "c1")
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, &storage.Client{ID: "c1", RedirectURIs: []string{"https://c.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	push := func(uri string) {
		ar := fosite.NewAuthorizeRequest()
		ar.Client, _ = s.GetClient(ctx, "c1")
		ar.Form.Set("response_type", "code")
		ar.Form.Set("client_secret", "must-not-be-stored")
		sess := provider.NewSession()
		sess.SetExpiresAt(fosite.PushedAuthorizeRequestContext, now.Add(time.Minute))
		ar.SetSession(sess)
		if err := s.CreatePARSession(ctx, uri, ar); err != nil {
			t.Fatal(err)
		}
	}

	push("urn:ietf:params:oauth:request_uri:expiring")
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	if _, err := s.GetPARSession(ctx, "urn:ietf:params:oauth:request_uri:expiring"); !errors.Is(err, storage.ErrExpired) {
		t.Fatalf("expired request_uri: got %v, want ErrExpired", err)
	}

	push("urn:ietf:params:oauth:request_uri:once")
	var wg sync.WaitGroup
	wins := make(chan fosite.AuthorizeRequester, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ar, err := s.GetPARSession(ctx, "urn:ietf:params:oauth:request_uri:once"); err == nil {
				wins <- ar
			}
		}()
	}
	wg.Wait()
	close(wins)
	n := 0
	for ar := range wins {
		n++
		if ar.GetRequestForm().Get("client_secret") != "" || !ar.GetResponseTypes().ExactOne("code") || ar.GetClient().GetID() != "c1" {
			t.Fatalf("redeemed request %+v", ar)
		}
	}
	if n != 1 {
		t.Fatalf("%d concurrent redemptions succeeded, want exactly 1", n)
	}
	if _, err := s.GetPARSession(ctx, "urn:ietf:params:oauth:request_uri:unknown"); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("unknown request_uri: %v", err)
	}
}
