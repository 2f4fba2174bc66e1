package app

import (
	"context"
	"fmt"
	"io"

	"github.com/latchhq/latch/apikeys"
	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/migrations"
	"github.com/latchhq/latch/provider"
	"github.com/latchhq/latch/secret"
	"github.com/latchhq/latch/storage"
)

// configKeyID is the id of the api_keys row made for the first
// LATCH_API_KEY; a later, different value gets "config-<random>".
const configKeyID = "config"

// DemoRedirectURI is where the demo client's browser flow ends (a loopback
// address, so any port works per RFC 8252).
const DemoRedirectURI = "http://127.0.0.1:8081/callback"

// Bootstrap prepares a start and reports what it made, once. It only ever
// creates what is absent, so no restart undoes an admin's decision:
//   - LATCH_API_KEY, when set and not stored yet, is stored (hashed). A
//     configured key that was revoked stays revoked: the start goes on (the
//     provider's users are not the admin key's business) with an error in
//     the log. An instance without LATCH_API_KEY deletes nothing.
//   - On SQLite, a first start (no API key ever, no client) makes an admin
//     key and a demo client and prints their secrets. On PostgreSQL, where
//     several instances start at once and logs are shared, nothing is
//     generated or printed: the log says how to create a key or client.
//
// Secrets printed here are never shown again. Every API key made here is
// audited like one made through the CLI.
func (a *App) Bootstrap(ctx context.Context, out io.Writer) error {
	// One transaction, printing only after commit: a failed first start
	// must not have shown a key that was then never stored, or stored one
	// that was never shown. The lock makes instances starting together take
	// turns, so each sees what the previous one made.
	var (
		msgs    []string
		warn    []string
		revoked *storage.APIKey
	)
	sqlite := a.Store.Dialect() == migrations.SQLite
	err := a.Store.InTx(ctx, func(ctx context.Context) error {
		msgs, warn, revoked = nil, nil, nil
		if err := a.Store.LockBootstrap(ctx); err != nil {
			return err
		}
		existing, err := a.Store.ListAPIKeys(ctx)
		if err != nil {
			return fmt.Errorf("list api keys: %w", err)
		}
		if a.Config.API.Key != "" {
			k, err := a.ensureConfigAPIKey(ctx, existing)
			if err != nil {
				return err
			}
			revoked = k
		}
		active := revoked == nil && a.Config.API.Key != ""
		for _, k := range existing {
			active = active || k.RevokedAt == nil
		}
		nClients, err := a.Store.CountClients(ctx)
		if err != nil {
			return fmt.Errorf("count clients: %w", err)
		}
		firstStart := len(existing) == 0 && nClients == 0
		switch {
		case active:
		case sqlite && firstStart:
			_, plain, err := a.APIKeys().Create(ctx, "admin", apikeys.SourceFirstStart)
			if err != nil {
				return err
			}
			msgs = append(msgs, fmt.Sprintf("\nAdmin API key (shown once, stored hashed):\n  %s\n", plain))
		default:
			warn = append(warn, "no active admin API key: create one with `latch apikey create --name NAME` (or set LATCH_API_KEY)")
		}
		if !sqlite && nClients == 0 {
			warn = append(warn, "no clients yet: register one with `latch clients create` or POST /api/clients")
		}
		// Only a first start makes the demo client: one an admin deleted
		// does not come back with the next restart.
		if !sqlite || !firstStart {
			return nil
		}
		c, plain, err := a.Clients().Create(ctx, clients.Metadata{
			ClientName:   "Demo client",
			RedirectURIs: []string{DemoRedirectURI},
			GrantTypes:   []string{provider.GrantAuthorizationCode, provider.GrantRefreshToken},
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
	if revoked != nil {
		a.Log.Error("LATCH_API_KEY was revoked and stays revoked: /api refuses it; set a new key or unset the variable",
			"api_key_id", revoked.ID, "revoked_at", revoked.RevokedAt)
	}
	for _, w := range warn {
		a.Log.Warn(w)
	}
	for _, m := range msgs {
		fmt.Fprint(out, m)
	}
	return nil
}

// ensureConfigAPIKey stores LATCH_API_KEY unless a row with its hash exists.
// It returns the row when it was revoked. A new row is audited in the
// caller's transaction, so the event commits with it.
func (a *App) ensureConfigAPIKey(ctx context.Context, existing []storage.APIKey) (*storage.APIKey, error) {
	svc := a.APIKeys()
	k, err := svc.Find(ctx, a.Config.API.Key)
	switch {
	case err == nil && k.RevokedAt != nil:
		return k, nil
	case err == nil:
		return nil, nil
	case !storage.IsNotFound(err):
		return nil, fmt.Errorf("look up configured api key: %w", err)
	}
	id := configKeyID
	for _, e := range existing {
		if e.ID == configKeyID {
			// An earlier LATCH_API_KEY keeps its row (and stays valid until
			// revoked): instances still configured with it keep working
			// during a rolling change of the variable.
			id = configKeyID + "-" + secret.ID(6)
			a.Log.Warn("LATCH_API_KEY changed; the earlier configured key stays valid until you revoke it", "earlier_api_key_id", configKeyID)
		}
	}
	if _, err := svc.Adopt(ctx, id, "LATCH_API_KEY", a.Config.API.Key, apikeys.SourceConfig); err != nil {
		return nil, fmt.Errorf("store configured api key: %w", err)
	}
	return nil, nil
}

// Clients returns the client registration service.
func (a *App) Clients() *clients.Service {
	res := a.Resources()
	audience := func(aud string) bool { return aud == a.Config.Issuer || res.Known(aud) }
	return clients.New(a.Store, a.Hasher, a.Scopes, audience).WithAudit(a.Audit()).WithLoopbackOutbound(a.Config.Outbound.AllowLoopback)
}

// CreateAPIKey makes a new admin key and returns it in plaintext, once.
func (a *App) CreateAPIKey(ctx context.Context, name string) (string, error) {
	_, plain, err := a.NewAPIKey(ctx, name)
	return plain, err
}
