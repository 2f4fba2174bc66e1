package app_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
)

// Generated admin keys carry at least 256 random bits (SPEC §1).
func TestGeneratedAPIKeyHas256Bits(t *testing.T) {
	a := open(t, t.TempDir(), nil)
	seen := map[string]bool{}
	for range 20 {
		plain, err := a.CreateAPIKey(context.Background(), "k")
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(plain, "latch_"))
		if err != nil || len(raw) < 32 || seen[plain] {
			t.Fatalf("key %q: %d random bytes (%v), repeated %v", plain, len(raw), err, seen[plain])
		}
		seen[plain] = true
	}
}
