package storage

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func openTestStore(t testing.TB, ttl time.Duration) *Store {
	t.Helper()
	s, err := Open("sqlite://"+filepath.Join(t.TempDir(), "c.db"), Options{ClientCacheTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// A write through the store is seen by the next read at once; a write the
// cache cannot see (another instance) is seen once the TTL passes.
func TestClientCacheInvalidation(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, time.Hour)
	c := &Client{ID: "c1", Name: "one", SecretHash: "h1"}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		write func() error
		want  string
	}{
		{"update", func() error { c.Name = "two"; return s.UpdateClient(ctx, c) }, "two"},
		{"in transaction", func() error {
			return s.InTx(ctx, func(ctx context.Context) error { c.Name = "three"; return s.UpdateClient(ctx, c) })
		}, "three"},
		{"secret rotation", func() error { return s.RotateClientSecret(ctx, "c1", "h2", nil) }, "three"},
	}
	for _, st := range steps {
		if _, err := s.Client(ctx, "c1"); err != nil { // warm
			t.Fatal(err)
		}
		if err := st.write(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, err := s.Client(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != st.want {
			t.Errorf("%s: name %q after write, want %q", st.name, got.Name, st.want)
		}
	}
	if got, _ := s.GetClient(ctx, "c1"); string(got.GetHashedSecret()) != "h2" {
		t.Errorf("secret hash %q after rotation, want h2", got.GetHashedSecret())
	}
	if err := s.DeleteClient(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetClient(ctx, "c1"); !IsNotFound(err) {
		t.Errorf("deleted client still served: %v", err)
	}
}

// Another instance's write bypasses this cache; the TTL bounds staleness.
func TestClientCacheExpires(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, time.Hour)
	now := time.Now()
	s.clients.now = func() time.Time { return now }
	if err := s.CreateClient(ctx, &Client{ID: "c1", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	// As another instance would: straight to the table, skipping our hooks.
	sqlDB, _ := s.db.DB()
	if _, err := sqlDB.Exec("UPDATE clients SET client_name = 'other' WHERE id = 'c1'"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Client(ctx, "c1"); got.Name != "one" {
		t.Fatalf("within TTL: %q, want the cached one", got.Name)
	}
	now = now.Add(time.Hour)
	if got, _ := s.Client(ctx, "c1"); got.Name != "other" {
		t.Errorf("after TTL: %q, want other", got.Name)
	}
}

// Callers may change what Client returns without corrupting the cache.
func TestClientCacheReturnsCopies(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t, time.Hour)
	if err := s.CreateClient(ctx, &Client{ID: "c1", RedirectURIs: []string{"https://a.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	a, _ := s.Client(ctx, "c1")
	a.RedirectURIs[0] = "https://evil.example/cb"
	a.Name = "changed"
	b, _ := s.Client(ctx, "c1")
	if b.RedirectURIs[0] != "https://a.example/cb" || b.Name != "" {
		t.Errorf("cache changed through a returned client: %+v", b)
	}
}

// A read that feeds a write must see what another instance wrote a moment
// ago, not this instance's cached copy: otherwise writing the copy back
// undoes that instance's change (a rotated secret, a removed redirect URI).
func TestClientForUpdateBypassesCache(t *testing.T) {
	ctx := context.Background()
	path := "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
	open := func() *Store {
		s, err := Open(path, Options{ClientCacheTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if _, err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := open(), open()
	if err := a.CreateClient(ctx, &Client{ID: "c1", Name: "one", SecretHash: "h1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client(ctx, "c1"); err != nil { // b caches h1
		t.Fatal(err)
	}
	if err := a.RotateClientSecret(ctx, "c1", "h2", nil); err != nil {
		t.Fatal(err)
	}
	err := b.InTx(ctx, func(ctx context.Context) error {
		c, err := b.ClientForUpdate(ctx, "c1")
		if err != nil {
			return err
		}
		if c.SecretHash != "h2" {
			t.Errorf("ClientForUpdate on b read secret %q, want a's rotated h2", c.SecretHash)
		}
		c.Name = "renamed on b"
		return b.UpdateClient(ctx, c)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Even an update built from b's stale cached copy leaves the secret alone.
	stale, err := b.Client(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	stale.SecretHash = "h1"
	if err := b.UpdateClient(ctx, stale); err != nil {
		t.Fatal(err)
	}
	got, err := a.ClientForUpdate(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if got.SecretHash != "h2" || got.Name != "renamed on b" {
		t.Fatalf("after b's updates: secret %q name %q, want h2 and b's name", got.SecretHash, got.Name)
	}
}
