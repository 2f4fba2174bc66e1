package keys_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/latchhq/latch/keys"
	"github.com/latchhq/latch/latchtest"
)

func accessClaims(i int) jwt.MapClaims {
	return jwt.MapClaims{"sub": "alice", "client_id": "web", "jti": fmt.Sprint(i),
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "scope": "openid offline_access"}
}

// Token signing with the in-memory ES256 key, as every grant does once or
// twice (access token, ID token).
func BenchmarkSignES256(b *testing.B) {
	ctx := context.Background()
	signer := latchtest.Start(b, latchtest.Options{}).App.Keys.Signer(keys.ES256)
	i := 0
	for b.Loop() {
		i++
		if _, _, err := signer.Generate(ctx, accessClaims(i), &jwt.Headers{Extra: map[string]any{"typ": "at+jwt"}}); err != nil {
			b.Fatal(err)
		}
	}
}

// Verification, first sight of each token (a full ECDSA verify) and a
// token seen before (the verified-token cache).
func BenchmarkDecodeES256(b *testing.B) {
	ctx := context.Background()
	signer := latchtest.Start(b, latchtest.Options{}).App.Keys.Signer(keys.ES256)
	toks := make([]string, 2048)
	for i := range toks {
		t, _, err := signer.Generate(ctx, accessClaims(i), &jwt.Headers{})
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = t
	}
	b.Run("first", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if i%len(toks) == 0 {
				b.StopTimer()
				for j := range toks { // fresh tokens: defeat the cache
					toks[j], _, _ = signer.Generate(ctx, accessClaims(i+j), &jwt.Headers{})
				}
				b.StartTimer()
			}
			if _, err := signer.Decode(ctx, toks[i%len(toks)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("seen", func(b *testing.B) {
		for b.Loop() {
			if _, err := signer.Decode(ctx, toks[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
