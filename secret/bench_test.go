package secret_test

import (
	"context"
	"testing"

	"github.com/ory/fosite"

	"github.com/latchhq/latch/secret"
)

// Client authentication: our keyed SHA-256 against fosite's default bcrypt
// (cost 12), the cost every token request would otherwise pay.
func BenchmarkClientSecretCompare(b *testing.B) {
	ctx := context.Background()
	plain := []byte(secret.New())
	cases := []struct {
		name   string
		hasher fosite.Hasher
	}{
		{"hmac-sha256", secret.NewHasher([]byte("0123456789abcdef0123456789abcdef"))},
		{"bcrypt-cost12", &fosite.BCrypt{Config: &fosite.Config{HashCost: 12}}},
	}
	for _, c := range cases {
		hash, err := c.hasher.Hash(ctx, plain)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if err := c.hasher.Compare(ctx, hash, plain); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
