package storage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// The storage calls each grant makes, on SQLite, one at a time.
func BenchmarkStorageCalls(b *testing.B) {
	ctx := context.Background()
	for _, ttl := range []time.Duration{0, time.Minute} {
		s := openTestStore(b, ttl)
		if err := s.CreateClient(ctx, &Client{ID: "c1", GrantTypes: []string{"client_credentials"}, Scope: "openid"}); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("GetClient/cache=%s", ttl), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.GetClient(ctx, "c1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	s := openTestStore(b, time.Minute)
	client := &Client{ID: "c1", Scope: "openid"}
	if err := s.CreateClient(ctx, client); err != nil {
		b.Fatal(err)
	}
	newReq := func() *fosite.Request {
		r := fosite.NewRequest()
		r.Client = client
		r.GrantedScope = fosite.Arguments{"openid"}
		r.Session = openid.NewDefaultSession()
		return r
	}
	i := 0
	b.Run("CreateAccessTokenSession", func(b *testing.B) {
		for b.Loop() {
			i++
			if err := s.CreateAccessTokenSession(ctx, fmt.Sprint("a", i), newReq()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetAccessTokenSession", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.GetAccessTokenSession(ctx, "a1", openid.NewDefaultSession()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RefreshRotation", func(b *testing.B) {
		for b.Loop() {
			i++
			req := newReq()
			err := s.InTx(ctx, func(ctx context.Context) error {
				if err := s.CreateAccessTokenSession(ctx, fmt.Sprint("ra", i), req); err != nil {
					return err
				}
				if err := s.CreateRefreshTokenSession(ctx, fmt.Sprint("r", i), fmt.Sprint("ra", i), req); err != nil {
					return err
				}
				return s.RotateRefreshToken(ctx, req.ID, fmt.Sprint("r", i))
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
