package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/latchhq/latch/app"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/storage"
	"github.com/latchhq/latch/storage/pgtest"
)

// TestMain stops the throwaway PostgreSQL cluster the bootstrap tests start.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const (
	testMasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	configuredKey = "latch_configured_key_0123456789abcdefghijklmnop"
)

// instance is one Latch start against a shared database.
type instance struct {
	app *app.App
	log *bytes.Buffer
}

// backends opens instances on a fresh SQLite file or PostgreSQL database.
func backends(t *testing.T, run func(t *testing.T, start func(apiKey string) *instance)) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dsn := "sqlite://" + filepath.Join(t.TempDir(), "latch.db")
			if backend == "postgres" {
				dsn = pgtest.DSN(t)
			}
			run(t, func(apiKey string) *instance {
				t.Helper()
				cfg := config.Default()
				cfg.Database.DSN = dsn
				cfg.MasterKey = testMasterKey
				cfg.API.Key = apiKey
				var buf bytes.Buffer
				a, err := app.Open(context.Background(), cfg, slog.New(slog.NewTextHandler(&syncWriter{w: &buf}, nil)), app.Options{Migrate: true})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { a.Close() })
				return &instance{app: a, log: &buf}
			})
		})
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func bootstrap(t *testing.T, in *instance) string {
	t.Helper()
	var out bytes.Buffer
	if err := in.app.Bootstrap(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func works(in *instance, key string) bool {
	_, err := in.app.Store.APIKeyByHash(context.Background(), in.app.Hasher.Sum("apikey", key))
	return err == nil
}

// A revoked LATCH_API_KEY stays revoked across restarts, and the restart
// says so loudly.
func TestRevokedConfiguredKeyStaysRevoked(t *testing.T) {
	backends(t, func(t *testing.T, start func(string) *instance) {
		a := start(configuredKey)
		bootstrap(t, a)
		if !works(a, configuredKey) {
			t.Fatal("configured key not stored")
		}
		k, err := a.app.Store.APIKeyByHash(context.Background(), a.app.Hasher.Sum("apikey", configuredKey))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.app.Store.RevokeAPIKey(context.Background(), k.ID); err != nil {
			t.Fatal(err)
		}
		b := start(configuredKey)
		bootstrap(t, b)
		if works(b, configuredKey) {
			t.Error("a restart with LATCH_API_KEY undid its revocation")
		}
		if !strings.Contains(b.log.String(), "level=ERROR") || !strings.Contains(b.log.String(), "LATCH_API_KEY was revoked") {
			t.Errorf("restart with a revoked LATCH_API_KEY did not log an error:\n%s", b.log)
		}
	})
}

// One instance started without LATCH_API_KEY deletes nothing and, on
// PostgreSQL, prints no key of its own.
func TestInstanceWithoutConfiguredKeyKeepsFleetKey(t *testing.T) {
	backends(t, func(t *testing.T, start func(string) *instance) {
		bootstrap(t, start(configuredKey))
		b := start("")
		out := bootstrap(t, b)
		if !works(b, configuredKey) {
			t.Error("an instance without LATCH_API_KEY deleted the fleet's configured key")
		}
		if strings.Contains(out, "Admin API key") {
			t.Errorf("an instance without LATCH_API_KEY printed a new admin key:\n%s", out)
		}
		// A changed LATCH_API_KEY adds a key; the earlier one stays valid
		// until revoked, so a rolling change never locks anyone out.
		const next = "latch_next_configured_key_0123456789abcdefghij"
		c := start(next)
		bootstrap(t, c)
		if !works(c, next) || !works(c, configuredKey) {
			t.Error("changing LATCH_API_KEY must add the new key and keep the earlier one")
		}
		events, err := c.app.Store.ListAudit(context.Background(), storage.AuditFilter{Event: audit.APIKeyCreated})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 2 {
			t.Errorf("want 2 api_key.created events (both configured keys), got %d", len(events))
		}
	})
}

// On PostgreSQL no instance generates or prints an admin key or makes a
// demo client; the log says how to make them. On SQLite the first start
// still prints both (SPEC §1), and only once however many start at once.
func TestConcurrentFirstStarts(t *testing.T) {
	backends(t, func(t *testing.T, start func(string) *instance) {
		const n = 4
		ins := make([]*instance, n)
		for i := range ins {
			ins[i] = start("")
		}
		outs := make([]string, n)
		var wg sync.WaitGroup
		for i := range ins {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var out bytes.Buffer
				if err := ins[i].app.Bootstrap(context.Background(), &out); err != nil {
					t.Error(err)
				}
				outs[i] = out.String()
			}()
		}
		wg.Wait()
		all := strings.Join(outs, "")
		ctx := context.Background()
		keys, err := ins[0].app.Store.ListAPIKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		clients, err := ins[0].app.Store.CountClients(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The same LATCH_API_KEY on instances starting together is stored
		// once, and no start fails on the duplicate.
		withKey := make([]*instance, n)
		for i := range withKey {
			withKey[i] = start(configuredKey)
		}
		for i := range withKey {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := withKey[i].app.Bootstrap(context.Background(), &bytes.Buffer{}); err != nil {
					t.Errorf("concurrent start with LATCH_API_KEY: %v", err)
				}
			}()
		}
		wg.Wait()
		after, err := ins[0].app.Store.ListAPIKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(keys)+1 || !works(ins[0], configuredKey) {
			t.Errorf("concurrent starts with LATCH_API_KEY stored %d keys (had %d)", len(after), len(keys))
		}
		if ins[0].app.Store.Dialect() == "postgres" {
			if all != "" || len(keys) != 0 || clients != 0 {
				t.Errorf("PostgreSQL first starts printed %q and made %d keys, %d clients", all, len(keys), clients)
			}
			if !strings.Contains(ins[0].log.String(), "latch apikey create") {
				t.Errorf("no hint how to create an admin key:\n%s", ins[0].log)
			}
			return
		}
		if strings.Count(all, "Admin API key") != 1 || strings.Count(all, "client_secret:") != 1 || len(keys) != 1 || clients != 1 {
			t.Errorf("SQLite first starts: %d keys, %d clients, printed:\n%s", len(keys), clients, all)
		}
	})
}

// A demo client the admin deleted does not come back with a restart.
func TestDeletedDemoClientStaysDeleted(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir, nil)
	id := fieldAfter(bootstrap(t, &instance{app: a}), "client_id:")
	if err := a.Store.DeleteClient(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b := open(t, dir, nil)
	if out := bootstrap(t, &instance{app: b}); out != "" {
		t.Errorf("restart printed:\n%s", out)
	}
	if n, err := b.Store.CountClients(context.Background()); err != nil || n != 0 {
		t.Errorf("restart re-created the deleted demo client (%d clients, %v)", n, err)
	}
}
