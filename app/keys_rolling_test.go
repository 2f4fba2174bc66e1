package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchhq/latch/app"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/keys"
	"github.com/latchhq/latch/keys/masterkey"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage"
	"github.com/latchhq/latch/storage/pgtest"
)

const newMasterKey = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="

// onBothBackends runs fn with the DSN of a fresh SQLite file and of a fresh
// PostgreSQL database.
func onBothBackends(t *testing.T, fn func(t *testing.T, dsn string)) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dsn := "sqlite://" + filepath.Join(t.TempDir(), "latch.db")
			if backend == "postgres" {
				dsn = pgtest.DSN(t)
			}
			fn(t, dsn)
		})
	}
}

func startWithKey(t *testing.T, dsn, master string) *latchtest.Env {
	return latchtest.Start(t, latchtest.Options{DSN: dsn, Configure: func(c *config.Config) { c.MasterKey = master }})
}

// serviceToken gets a client_credentials access token from env.
func serviceToken(t *testing.T, env *latchtest.Env) (string, latchtest.Client) {
	t.Helper()
	c := env.CreateClient(clients.Metadata{ClientName: "svc", GrantTypes: []string{"client_credentials"}, TokenEndpointAuthMethod: "client_secret_basic"})
	tok, err := (&clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: env.URL + "/oauth2/token"}).Token(context.Background())
	if err != nil {
		t.Fatalf("client_credentials at %s: %v", env.URL, err)
	}
	return tok.AccessToken, c
}

func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		KID string `json:"kid"`
	}
	_ = json.Unmarshal(raw, &h)
	return h.KID
}

// introspects reports whether env says token is active.
func introspects(t *testing.T, env *latchtest.Env, c latchtest.Client, token string) bool {
	t.Helper()
	req, _ := http.NewRequest("POST", env.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if out["active"] != true {
		t.Logf("introspect at %s: %d %v (kid %s)", env.URL, resp.StatusCode, out, kidOf(t, token))
	}
	return resp.StatusCode == http.StatusOK && out["active"] == true
}

func publishedKIDs(t *testing.T, env *latchtest.Env) string {
	t.Helper()
	resp, err := http.Get(env.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return string(raw)
}

// A rewrap while instances run, then a rolling restart: the instance still
// on the old master key refuses to seal (manual and scheduled rotation), keeps
// serving, and verifies a key made after the rewrap; afterwards every row
// opens under the new key, so a restart works (issue 16 item 5).
func TestRewrapDuringRollingRestart(t *testing.T) {
	onBothBackends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		old := startWithKey(t, dsn, latchtest.MasterKey)

		// `latch keys rewrap`, from another process on the old key.
		cfg := *old.Config
		cli, err := app.Open(ctx, &cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{})
		if err != nil {
			t.Fatal(err)
		}
		next, _ := masterkey.Decode(newMasterKey)
		if _, err := cli.Keys.Rewrap(ctx, keys.NewSealer(next)); err != nil {
			t.Fatal(err)
		}
		cli.Close()

		// The instance not yet restarted must not seal anything now.
		if _, err := old.App.Keys.Rotate(ctx, keys.RS256, 0, 24*time.Hour); !errors.Is(err, keys.ErrStaleMasterKey) {
			t.Fatalf("rotate on the old master key after a rewrap: %v, want ErrStaleMasterKey", err)
		}
		sch := keys.Schedule{Interval: time.Nanosecond, RetireAfter: 24 * time.Hour}
		if _, err := old.App.Keys.RotateIfDue(ctx, keys.ES256, sch); !errors.Is(err, keys.ErrStaleMasterKey) {
			t.Fatalf("scheduled rotation on the old master key after a rewrap: %v", err)
		}

		// The restarted instance rotates; the old one still serves, and a
		// token signed with the new key verifies there at once.
		fresh := startWithKey(t, dsn, newMasterKey)
		kid, err := fresh.App.Keys.Rotate(ctx, keys.ES256, 0, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		tok, c := serviceToken(t, fresh)
		if kidOf(t, tok) != kid {
			t.Fatalf("restarted instance signs with %s, want %s", kidOf(t, tok), kid)
		}
		if !introspects(t, old, c, tok) {
			t.Error("the old-key instance cannot verify a token signed with a key made after the rewrap")
		}
		oldTok, oc := serviceToken(t, old)
		if !introspects(t, fresh, oc, oldTok) {
			t.Error("a token the old-key instance signed does not verify on the restarted one")
		}
		if old.App.Keys.Unopened() == 0 {
			t.Error("the old-key instance does not report the key it cannot open")
		}
		if !strings.Contains(publishedKIDs(t, old), kid) {
			t.Error("the old-key instance does not publish the new key")
		}

		// Rolling restart done: every row opens under the new master key.
		cfg.MasterKey = newMasterKey
		restarted, err := app.Open(ctx, &cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{})
		if err != nil {
			t.Fatalf("restart on the new master key: %v", err)
		}
		defer restarted.Close()
		if n := restarted.Keys.Unopened(); n != 0 {
			t.Errorf("%d keys do not open under the new master key", n)
		}
		evs, err := restarted.Store.ListAudit(ctx, storage.AuditFilter{Event: audit.KeyRewrapped})
		if err != nil || len(evs) != 1 {
			t.Errorf("key.rewrapped events: %d %v", len(evs), err)
		}
	})
}

// A key rotated on one instance signs at once there (pre-publish 0); a
// token it signed is verified by another instance immediately, long before
// its periodic reload (issue 16 item 7). Scheduled rotations are audited.
func TestKeyRotatedOnOneInstanceVerifiesOnAnother(t *testing.T) {
	onBothBackends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		a := startWithKey(t, dsn, latchtest.MasterKey)
		b := startWithKey(t, dsn, latchtest.MasterKey)
		kid, err := a.App.Keys.RotateIfDue(ctx, keys.ES256, keys.Schedule{Interval: time.Nanosecond, RetireAfter: 24 * time.Hour})
		if err != nil || kid == "" {
			t.Fatalf("scheduled rotation: %q %v", kid, err)
		}
		tok, c := serviceToken(t, a)
		if kidOf(t, tok) != kid {
			t.Fatalf("A signs with %s, want %s", kidOf(t, tok), kid)
		}
		if !introspects(t, b, c, tok) {
			t.Error("B does not verify a token signed with the key just rotated on A")
		}
		if !strings.Contains(publishedKIDs(t, b), kid) {
			t.Error("B does not publish the key it just learned")
		}
		evs, err := a.App.Store.ListAudit(ctx, storage.AuditFilter{Event: audit.KeyRotated})
		if err != nil || len(evs) != 1 || evs[0].Details["trigger"] != "schedule" {
			t.Errorf("scheduled rotation audit: %+v %v", evs, err)
		}
	})
}

// Instances starting together on an empty database make exactly one key per
// algorithm, and both algorithms exist from the first start.
func TestConcurrentStartsMakeOneKeyPerAlg(t *testing.T) {
	onBothBackends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		cfg := config.Default()
		cfg.Database.DSN = dsn
		cfg.MasterKey = latchtest.MasterKey
		// Migrate first, as `latch migrate` would; then start four at once.
		first, err := storage.Open(dsn, storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := first.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		first.Close()
		var wg sync.WaitGroup
		apps := make([]*app.App, 4)
		for i := range apps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := app.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{})
				if err != nil {
					t.Error(err)
					return
				}
				apps[i] = a
			}()
		}
		wg.Wait()
		for _, a := range apps {
			if a != nil {
				defer a.Close()
			}
		}
		if t.Failed() {
			return
		}
		rows, err := apps[0].Store.AllSigningKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		per := map[string]int{}
		for _, r := range rows {
			per[r.Alg]++
		}
		if per[keys.ES256] != 1 || per[keys.RS256] != 1 || len(rows) != 2 {
			t.Errorf("concurrent first starts made keys %v, want one ES256 and one RS256", per)
		}
	})
}
