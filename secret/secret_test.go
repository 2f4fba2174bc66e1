package secret

import (
	"context"
	"testing"
)

func TestHasher(t *testing.T) {
	h := NewHasher([]byte("k1"))
	ctx := context.Background()
	s := New()
	if len(s) != 43 {
		t.Fatalf("secret length %d, want 43 base64url chars (256 bits)", len(s))
	}
	hash, err := h.Hash(ctx, []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	if string(hash) == s {
		t.Fatal("hash equals secret")
	}
	cases := []struct {
		name string
		h    *Hasher
		data string
		ok   bool
	}{
		{"same key and secret", h, s, true},
		{"wrong secret", h, s + "x", false},
		{"empty secret", h, "", false},
		{"other key", NewHasher([]byte("k2")), s, false},
	}
	for _, c := range cases {
		err := c.h.Compare(ctx, hash, []byte(c.data))
		if (err == nil) != c.ok {
			t.Errorf("%s: Compare err=%v, want ok=%v", c.name, err, c.ok)
		}
	}
	if h.Sum("apikey", s) == h.Sum("client", s) {
		t.Error("purposes must separate hashes")
	}
	if err := h.Compare(ctx, []byte("$2a$10$bcrypt"), []byte(s)); err == nil {
		t.Error("foreign hash format accepted")
	}
}

// Identifiers are passed to the CLI as arguments; one starting with '-'
// would be read as a flag (1 in 32 with plain base64url).
func TestIDNeverLooksLikeAFlag(t *testing.T) {
	for range 2000 {
		if id := ID(9); id[0] == '-' || id[0] == '_' || len(id) != 12 {
			t.Fatalf("ID(9) = %q", id)
		}
	}
}
