package keys_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/latchhq/latch/keys"
	"github.com/latchhq/latch/latchtest"
)

// Remembering verified tokens must not let a forged or orphaned one through:
// a changed payload is verified afresh, and a retired key's tokens stop
// verifying even if they were verified a moment ago.
func TestDecodeCacheKeepsVerifying(t *testing.T) {
	ctx := context.Background()
	env := latchtest.Start(t, latchtest.Options{})
	signer := env.App.Keys.Signer(keys.ES256)
	tok, _, err := signer.Generate(ctx, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}, &jwt.Headers{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := signer.Decode(ctx, tok); err != nil {
			t.Fatalf("decode %d: %v", i, err)
		}
	}
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + strings.TrimRight(parts[1], "=") + "x." + parts[2]
	if _, err := signer.Decode(ctx, forged); err == nil {
		t.Error("a token with a changed payload verified")
	}
	if _, err := env.App.Keys.Rotate(ctx, keys.ES256, 0, time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	if _, err := signer.Decode(ctx, tok); err == nil {
		t.Error("a token of a retired key still verifies from the cache")
	}
}
