package keys_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/latchhq/latch/keys"
	"github.com/latchhq/latch/keys/masterkey"
	"github.com/latchhq/latch/storage"
)

func TestSealerRoundTripAndTamper(t *testing.T) {
	k1, _ := masterkey.Decode("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	k2, _ := masterkey.Decode("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=")
	s1, s2 := keys.NewSealer(k1), keys.NewSealer(k2)
	sealed := s1.Seal([]byte("private"), []byte("kid-1"))
	if pt, err := s1.Open(sealed, []byte("kid-1")); err != nil || string(pt) != "private" {
		t.Fatalf("round trip: %q %v", pt, err)
	}
	cases := map[string]func() error{
		"other master key": func() error { _, err := s2.Open(sealed, []byte("kid-1")); return err },
		"other row (aad)":  func() error { _, err := s1.Open(sealed, []byte("kid-2")); return err },
		"flipped byte": func() error {
			b := []byte(sealed)
			b[len(b)-3] ^= 1
			_, err := s1.Open(string(b), []byte("kid-1"))
			return err
		},
		"not sealed": func() error { _, err := s1.Open("plain", nil); return err },
	}
	for name, f := range cases {
		if f() == nil {
			t.Errorf("%s: opened", name)
		}
	}
	if _, err := masterkey.Decode("c2hvcnQ="); err == nil {
		t.Error("short master key accepted")
	}
}

func newManager(t *testing.T, now func() time.Time) (*keys.Manager, *storage.Store) {
	t.Helper()
	st, err := storage.Open("sqlite://"+filepath.Join(t.TempDir(), "k.db"), storage.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	mk, _ := masterkey.Decode("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	m := keys.NewManager(st, keys.NewSealer(mk), now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := m.Ensure(context.Background(), keys.ES256); err != nil {
		t.Fatal(err)
	}
	return m, st
}

// Rotation publishes the new key before it signs and keeps verifying
// tokens the old key signed until it retires.
func TestRotationKeepsTokensInFlightValid(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	m, _ := newManager(t, clock)
	ctx := context.Background()
	signer := m.Signer(keys.ES256)
	old, _, err := signer.Generate(ctx, jwt.MapClaims{"sub": "a", "exp": now.Add(time.Hour).Unix()}, &jwt.Headers{})
	if err != nil {
		t.Fatal(err)
	}
	oldKid := m.List()[0].KID

	newKid, err := m.Rotate(ctx, keys.ES256, 10*time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.JWKS().Keys) != 2 {
		t.Fatalf("new key not pre-published: %d keys", len(m.JWKS().Keys))
	}
	tok, _, _ := signer.Generate(ctx, jwt.MapClaims{"sub": "b", "exp": now.Add(time.Hour).Unix()}, &jwt.Headers{})
	if kid := mustKid(t, signer, tok); kid != oldKid {
		t.Errorf("signed with %s during pre-publication, want old %s", kid, oldKid)
	}
	now = now.Add(11 * time.Minute)
	tok, _, _ = signer.Generate(ctx, jwt.MapClaims{"sub": "c", "exp": now.Add(time.Hour).Unix()}, &jwt.Headers{})
	if kid := mustKid(t, signer, tok); kid != newKid {
		t.Errorf("signed with %s after activation, want new %s", kid, newKid)
	}
	if _, err := signer.Decode(ctx, old); err != nil {
		t.Errorf("token from the old key stopped verifying: %v", err)
	}
	now = now.Add(2 * time.Hour)
	if len(m.JWKS().Keys) != 1 {
		t.Errorf("retired key still published")
	}
}

func mustKid(t *testing.T, s *keys.Signer, tok string) string {
	t.Helper()
	parsed, err := s.Decode(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := parsed.Header["kid"].(string)
	return kid
}

func TestSignerRefusesUnknownKid(t *testing.T) {
	a, _ := newManager(t, time.Now)
	b, _ := newManager(t, time.Now)
	tok, _, err := a.Signer("").Generate(context.Background(), jwt.MapClaims{"sub": "x"}, &jwt.Headers{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Signer("").Decode(context.Background(), tok); err == nil {
		t.Error("a token signed by another deployment's key verified")
	}
}
