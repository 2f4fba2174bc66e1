package keys_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/latchhq/latch/keys"
	"github.com/latchhq/latch/storage"
	"github.com/latchhq/latch/storage/conformance"
)

func setup(t *testing.T) (*storage.Store, *conformance.Clock) {
	t.Helper()
	clk := conformance.NewClockAt(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s, err := storage.Open("sqlite://"+filepath.Join(t.TempDir(), "keys.db"), storage.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, clk
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func sealer(t *testing.T, b byte) *keys.Sealer {
	var k keys.MasterKey
	for i := range k {
		k[i] = b
	}
	return keys.NewSealer(k)
}

func sign(t *testing.T, m *keys.Manager) (token, kid string) {
	t.Helper()
	tok, _, err := m.Signer(keys.ES256).Generate(context.Background(), jwt.MapClaims{"sub": "x"}, &jwt.Headers{})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := m.Signer(keys.ES256).Decode(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	return tok, parsed.Header["kid"].(string)
}

func jwksKIDs(m *keys.Manager) map[string]bool {
	out := map[string]bool{}
	for _, k := range m.JWKS().Keys {
		out[k.KeyID] = true
	}
	return out
}

// TestScheduledRotation: one rotation however many instances run the
// schedule; the new key is published before it signs; the old key keeps
// verifying until retirement; keys of the other algorithm are untouched.
func TestScheduledRotation(t *testing.T) {
	ctx := context.Background()
	s, clk := setup(t)
	sch := keys.Schedule{Interval: 24 * time.Hour, PrePublish: time.Hour, RetireAfter: 2 * time.Hour}
	instances := make([]*keys.Manager, 4)
	for i := range instances {
		instances[i] = keys.NewManager(s, sealer(t, 1), clk.Now, quiet)
		if err := instances[i].Ensure(ctx, keys.ES256, keys.RS256); err != nil {
			t.Fatal(err)
		}
	}
	a := instances[0]
	oldTok, oldKID := sign(t, a)
	if kid, err := a.RotateIfDue(ctx, keys.ES256, sch); err != nil || kid != "" {
		t.Fatalf("rotation before the interval: %q %v", kid, err)
	}

	clk.Advance(25 * time.Hour)
	var wg sync.WaitGroup
	kids := make(chan string, len(instances))
	for _, m := range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kid, err := m.RotateIfDue(ctx, keys.ES256, sch)
			if err != nil {
				t.Error(err)
			}
			if kid != "" {
				kids <- kid
			}
		}()
	}
	wg.Wait()
	close(kids)
	var rotated []string
	for k := range kids {
		rotated = append(rotated, k)
	}
	if len(rotated) != 1 {
		t.Fatalf("%d instances rotated, want exactly 1", len(rotated))
	}
	newKID := rotated[0]
	for _, m := range instances {
		if err := m.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Pre-publication: in the JWKS, not yet signing.
	if !jwksKIDs(a)[newKID] || !jwksKIDs(a)[oldKID] {
		t.Fatalf("JWKS %v should hold old %s and new %s", jwksKIDs(a), oldKID, newKID)
	}
	if _, kid := sign(t, a); kid != oldKID {
		t.Fatalf("signed with %s during pre-publication, want %s", kid, oldKID)
	}
	clk.Advance(time.Hour + time.Second)
	if _, kid := sign(t, instances[3]); kid != newKID {
		t.Fatalf("signed with %s after activation, want %s", kid, newKID)
	}
	if _, err := a.Signer(keys.ES256).Decode(ctx, oldTok); err != nil {
		t.Fatalf("token of the old key no longer verifies: %v", err)
	}
	rs, _, err := a.Signer(keys.ES256).Generate(keys.WithIDTokenAlg(ctx, keys.RS256), jwt.MapClaims{"sub": "x"}, &jwt.Headers{})
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := a.Signer(keys.ES256).Decode(ctx, rs); err != nil || tok.Header["alg"] != "RS256" {
		t.Fatalf("RS256 key retired by an ES256 rotation? %v %v", err, tok)
	}

	// Retirement: the old key leaves the JWKS and stops verifying.
	clk.Advance(2 * time.Hour)
	if err := a.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if jwksKIDs(a)[oldKID] {
		t.Fatalf("retired key %s still published", oldKID)
	}
	if _, err := a.Signer(keys.ES256).Decode(ctx, oldTok); err == nil {
		t.Fatal("token of a retired key still verifies")
	}
	if kid, err := a.RotateIfDue(ctx, keys.ES256, sch); err != nil || kid != "" {
		t.Fatalf("second rotation within the interval: %q %v", kid, err)
	}
}

// TestRewrap: every key, retired ones included, moves to the new master
// key in one go; the old master key no longer opens them.
func TestRewrap(t *testing.T) {
	ctx := context.Background()
	s, clk := setup(t)
	m := keys.NewManager(s, sealer(t, 1), clk.Now, quiet)
	if err := m.Ensure(ctx, keys.ES256, keys.RS256); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Rotate(ctx, keys.ES256, 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	before := jwksKIDs(m)
	n, err := m.Rewrap(ctx, sealer(t, 2))
	if err != nil || n != 3 {
		t.Fatalf("rewrap: %d keys, %v", n, err)
	}
	after := keys.NewManager(s, sealer(t, 2), clk.Now, quiet)
	if err := after.Reload(ctx); err != nil {
		t.Fatalf("new master key cannot open the keys: %v", err)
	}
	if got := jwksKIDs(after); len(got) != len(before) {
		t.Fatalf("JWKS after rewrap %v, before %v", got, before)
	}
	if after.Unopened() != 0 {
		t.Fatalf("new master key leaves %d keys unopened", after.Unopened())
	}
	// The old master key opens none of them; the instance still starts and
	// publishes them, and reports them.
	old := keys.NewManager(s, sealer(t, 1), clk.Now, quiet)
	if err := old.Reload(ctx); err != nil {
		t.Fatalf("reload must tolerate keys it cannot open: %v", err)
	}
	if old.Unopened() != 3 || len(jwksKIDs(old)) != len(before) {
		t.Fatal("old master key still opens the rewrapped keys")
	}
	// Rewrapping with the wrong current key changes nothing.
	if _, err := keys.NewManager(s, sealer(t, 9), clk.Now, quiet).Rewrap(ctx, sealer(t, 3)); err == nil {
		t.Fatal("rewrap with a wrong current master key succeeded")
	}
	if m2 := keys.NewManager(s, sealer(t, 2), clk.Now, quiet); m2.Reload(ctx) != nil || m2.Unopened() != 0 {
		t.Fatal("failed rewrap was not rolled back")
	}
}

// countingStore is the real store, counting how often the key set is read.
type countingStore struct {
	*storage.Store
	mu    sync.Mutex
	lists int
}

func (c *countingStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	c.mu.Lock()
	c.lists++
	c.mu.Unlock()
	return c.Store.ListSigningKeys(ctx)
}

// An unknown kid reloads the key set, so a key made by another instance
// verifies at once; a flood of made-up kids costs at most one read per
// interval, not one per token.
func TestUnknownKidReloadsRateLimited(t *testing.T) {
	ctx := context.Background()
	s, clk := setup(t)
	a := keys.NewManager(s, sealer(t, 1), clk.Now, quiet)
	cs := &countingStore{Store: s}
	b := keys.NewManager(cs, sealer(t, 1), clk.Now, quiet)
	if err := a.Ensure(ctx, keys.ES256); err != nil {
		t.Fatal(err)
	}
	if err := b.Ensure(ctx, keys.ES256); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Rotate(ctx, keys.ES256, 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	tok, _ := sign(t, a)
	if _, err := b.Signer(keys.ES256).Decode(ctx, tok); err != nil {
		t.Fatalf("a token signed with a key rotated on another instance: %v", err)
	}
	cs.mu.Lock()
	cs.lists = 0
	cs.mu.Unlock()
	forged := keys.NewManager(mustStore(t), sealer(t, 2), clk.Now, quiet)
	if err := forged.Ensure(ctx, keys.ES256); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		tok, _, err := forged.Signer(keys.ES256).Generate(ctx, jwt.MapClaims{"sub": "x"}, &jwt.Headers{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Signer(keys.ES256).Decode(ctx, tok); err == nil {
			t.Fatal("a token with an unknown kid verified")
		}
	}
	if cs.lists > 1 {
		t.Errorf("50 tokens with unknown kids caused %d key reloads, want at most 1", cs.lists)
	}
}

func mustStore(t *testing.T) *storage.Store {
	s, _ := setup(t)
	return s
}
