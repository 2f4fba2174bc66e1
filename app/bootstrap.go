package app

import (
	"context"
	"fmt"
	"io"

	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/storage"
)

// configKeyID is the api_keys row that mirrors LATCH_API_KEY.
const configKeyID = "config"

// DemoRedirectURI is where the demo client's browser flow ends (a loopback
// address, so any port works per RFC 8252).
const DemoRedirectURI = "http://127.0.0.1:8081/callback"

// Bootstrap prepares a first start and reports what it made, once:
//   - LATCH_API_KEY, when set, is stored (hashed) as the "config" key;
//   - otherwise, when no API key exists, one is generated and printed;
//   - when no client exists, a demo client is created and its secret printed.
//
// Secrets printed here are never shown again.
func (a *App) Bootstrap(ctx context.Context, out io.Writer) error {
	// One transaction, printing only after commit: a failed first start
	// must not have shown a key that was then never stored, or stored one
	// that was never shown.
	var msgs []string
	err := a.Store.InTx(ctx, func(ctx context.Context) error {
		if err := a.syncConfigAPIKey(ctx); err != nil {
			return err
		}
		keysExist, err := a.anyAPIKey(ctx)
		if err != nil {
			return err
		}
		if !keysExist {
			plain, err := a.CreateAPIKey(ctx, "admin")
			if err != nil {
				return err
			}
			msgs = append(msgs, fmt.Sprintf("\nAdmin API key (shown once, stored hashed):\n  %s\n", plain))
		}
		n, err := a.Store.CountClients(ctx)
		if err != nil {
			return fmt.Errorf("count clients: %w", err)
		}
		if n > 0 {
			return nil
		}
		c, plain, err := a.Clients().Create(ctx, clients.Metadata{
			ClientName:   "Demo client",
			RedirectURIs: []string{DemoRedirectURI},
			GrantTypes:   []string{"authorization_code", "refresh_token"},
			Scope:        "openid profile email offline_access",
		})
		if err != nil {
			return fmt.Errorf("create demo client: %w", err)
		}
		msgs = append(msgs, fmt.Sprintf("\nDemo client (secret shown once, stored hashed):\n  client_id:     %s\n  client_secret: %s\n  redirect_uri:  %s\n\n",
			c.ID, plain, DemoRedirectURI))
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range msgs {
		fmt.Fprint(out, m)
	}
	return nil
}

// Clients returns the client registration service.
func (a *App) Clients() *clients.Service {
	res := a.Resources()
	return clients.New(a.Store, a.Hasher, a.Scopes).WithAudit(a.Audit()).WithAudiences(func(aud string) bool {
		return aud == a.Config.Issuer || res.Known(aud)
	})
}

// CreateAPIKey makes a new admin key and returns it in plaintext, once.
func (a *App) CreateAPIKey(ctx context.Context, name string) (string, error) {
	_, plain, err := a.NewAPIKey(ctx, name)
	return plain, err
}

func (a *App) anyAPIKey(ctx context.Context) (bool, error) {
	ks, err := a.Store.ListAPIKeys(ctx)
	if err != nil {
		return false, err
	}
	for _, k := range ks {
		if k.RevokedAt == nil {
			return true, nil
		}
	}
	return false, nil
}

// syncConfigAPIKey keeps the "config" row equal to LATCH_API_KEY: set,
// changed or removed.
func (a *App) syncConfigAPIKey(ctx context.Context) error {
	if a.Config.API.Key == "" {
		return a.Store.DeleteAPIKey(ctx, configKeyID)
	}
	k := &storage.APIKey{ID: configKeyID, Name: "LATCH_API_KEY", Hash: a.Hasher.Sum("apikey", a.Config.API.Key)}
	if err := a.Store.PutAPIKey(ctx, k); err != nil {
		return fmt.Errorf("store configured api key: %w", err)
	}
	return nil
}
