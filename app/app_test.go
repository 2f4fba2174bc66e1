package app_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchhq/latch/app"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/keys"
	"github.com/latchhq/latch/keys/masterkey"
)

func open(t *testing.T, dir string, edit func(*config.Config)) *app.App {
	t.Helper()
	cfg := config.Default()
	cfg.Database.DSN = "sqlite://" + filepath.Join(dir, "latch.db")
	cfg.MasterKeyFile = filepath.Join(dir, "latch.key")
	if edit != nil {
		edit(cfg)
	}
	a, err := app.Open(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// First start prints the admin key and a demo client once; later starts
// print nothing and the printed secrets work.
func TestFirstStartPrintsSecretsOnce(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir, nil)
	if !a.MasterKeyGenerated {
		t.Error("no master key generated on first start")
	}
	st, err := os.Stat(filepath.Join(dir, "latch.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("latch.key: %v mode %v, want 0600", err, st.Mode().Perm())
	}
	var out bytes.Buffer
	if err := a.Bootstrap(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if !strings.Contains(text, "Admin API key") || !strings.Contains(text, "client_secret:") {
		t.Fatalf("first start printed:\n%s", text)
	}
	key := fieldAfter(text, "Admin API key (shown once, stored hashed):\n  ")
	if _, err := a.Store.APIKeyByHash(context.Background(), a.Hasher.Sum("apikey", key)); err != nil {
		t.Errorf("printed API key does not work: %v", err)
	}
	a.Close()

	b := open(t, dir, nil)
	if b.MasterKeyGenerated {
		t.Error("master key regenerated on second start")
	}
	out.Reset()
	if err := b.Bootstrap(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("second start printed:\n%s", out.String())
	}
	if _, err := b.Store.APIKeyByHash(context.Background(), b.Hasher.Sum("apikey", key)); err != nil {
		t.Errorf("API key from the first start stopped working: %v", err)
	}
}

func fieldAfter(text, marker string) string {
	i := strings.Index(text, marker)
	if i < 0 {
		return ""
	}
	rest := text[i+len(marker):]
	return strings.TrimSpace(strings.SplitN(rest, "\n", 2)[0])
}

func TestConfiguredAPIKeyIsStoredHashedAndNotPrinted(t *testing.T) {
	dir := t.TempDir()
	const key = "latch_configured_key_0123456789abcdefghijklmnop"
	a := open(t, dir, func(c *config.Config) { c.API.Key = key })
	var out bytes.Buffer
	if err := a.Bootstrap(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "Admin API key") || strings.Contains(out.String(), key) {
		t.Errorf("printed an admin key although LATCH_API_KEY is set:\n%s", out.String())
	}
	k, err := a.Store.APIKeyByHash(context.Background(), a.Hasher.Sum("apikey", key))
	if err != nil || k.Hash == key {
		t.Fatalf("configured key: %v %+v", err, k)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "latch.db"))
	if bytes.Contains(raw, []byte(key)) {
		t.Error("the API key is in the database file in plaintext")
	}
}

func TestWrongMasterKeyIsRefused(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, nil).Close()
	cfg := config.Default()
	cfg.Database.DSN = "sqlite://" + filepath.Join(dir, "latch.db")
	cfg.MasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	_, err := app.Open(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{})
	if err == nil || !strings.Contains(err.Error(), "LATCH_MASTER_KEY") {
		t.Fatalf("opening with another master key: %v", err)
	}
}

// Rewrapping under a new master key must not invalidate what was issued:
// the admin key, client secrets and refresh tokens keep working, and the
// old master key no longer opens the database.
func TestRewrapKeepsSecretsValid(t *testing.T) {
	dir := t.TempDir()
	const keyA = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	const keyB = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
	ctx := context.Background()
	a := open(t, dir, func(c *config.Config) { c.MasterKey = keyA })
	var out bytes.Buffer
	if err := a.Bootstrap(ctx, &out); err != nil {
		t.Fatal(err)
	}
	apiKey := fieldAfter(out.String(), "Admin API key (shown once, stored hashed):\n  ")
	clientID := fieldAfter(out.String(), "client_id:")
	clientSecret := fieldAfter(out.String(), "client_secret:")
	hmacBefore := a.Provider().Config.(interface {
		GetGlobalSecret(context.Context) ([]byte, error)
	})
	before, _ := hmacBefore.GetGlobalSecret(ctx)

	mb, _ := masterkey.Decode(keyB)
	if _, err := a.Keys.Rewrap(ctx, keys.NewSealer(mb)); err != nil {
		t.Fatal(err)
	}
	a.Close()

	b := open(t, dir, func(c *config.Config) { c.MasterKey = keyB })
	if _, err := b.Store.APIKeyByHash(ctx, b.Hasher.Sum("apikey", apiKey)); err != nil {
		t.Errorf("admin API key stopped working after rewrap: %v", err)
	}
	c, err := b.Store.Client(ctx, clientID)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Hasher.Compare(ctx, c.GetHashedSecret(), []byte(clientSecret)); err != nil {
		t.Errorf("client secret stopped working after rewrap: %v", err)
	}
	after, _ := b.Provider().Config.(interface {
		GetGlobalSecret(context.Context) ([]byte, error)
	}).GetGlobalSecret(ctx)
	if !bytes.Equal(before, after) {
		t.Error("the code/refresh-token HMAC key changed: issued codes and refresh tokens would die")
	}
	b.Close()

	cfg := config.Default()
	cfg.Database.DSN = "sqlite://" + filepath.Join(dir, "latch.db")
	cfg.MasterKey = keyA
	if _, err := app.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{}); err == nil {
		t.Error("the old master key still opens the database after rewrap")
	}
}
