package app

import (
	"context"

	"github.com/latchhq/latch/keys"
	"github.com/latchhq/latch/logout"
	"github.com/latchhq/latch/storage"
)

// Logout returns the sign-out service: ending login sessions and
// delivering back-channel logout tokens.
func (a *App) Logout() *logout.Service {
	a.logoutOnce.Do(func() {
		cfg := a.Config.Logout
		a.logout = logout.New(a.Store, a.logoutSigner, a.Outbound, a.Audit(), a.Log, logout.Options{
			Issuer: a.Config.Issuer, RevokeTokens: cfg.RevokeTokens, MaxAttempts: cfg.BackchannelMaxAttempts,
			RetryDelay: cfg.BackchannelRetryDelay, Now: a.Now,
		})
	})
	return a.logout
}

// logoutSigner signs a client's logout tokens with the algorithm of its ID
// tokens, as the token endpoint does.
func (a *App) logoutSigner(ctx context.Context, c *storage.Client) (context.Context, logout.Signer) {
	return keys.WithIDTokenAlg(ctx, c.IDTokenSignedResponseAlg), a.Keys.Signer(keys.ES256)
}
