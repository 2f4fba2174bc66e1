package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/latchhq/latch/app"
	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/config"
)

// benchRedirectURI is never contacted: the tool reads the code from the
// Location header.
const benchRedirectURI = "http://127.0.0.1:9/bench/callback"

const benchScopes = "openid offline_access profile email"

// createClient registers one confidential client with every grant, through
// the same code path as the server, in the server's database. The config
// comes from LATCH_* like the server's, so the master key (which keys the
// secret hash) matches.
func createClient(ctx context.Context, dsn string) (id, secret string, err error) {
	env := append(os.Environ(), "LATCH_DATABASE_DSN="+dsn)
	cfg, err := config.Load(config.LoadOptions{Environ: env})
	if err != nil {
		return "", "", fmt.Errorf("config for setup: %w", err)
	}
	a, err := app.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{})
	if err != nil {
		return "", "", fmt.Errorf("open database for setup: %w", err)
	}
	defer a.Close()
	c, sec, err := a.Clients().Create(ctx, clients.Metadata{
		ClientName:   "latch-bench",
		RedirectURIs: []string{benchRedirectURI},
		GrantTypes:   []string{"authorization_code", "refresh_token", "client_credentials"},
		Scope:        benchScopes,
	})
	if err != nil {
		return "", "", fmt.Errorf("create bench client: %w", err)
	}
	return c.ID, sec, nil
}
