package migrations_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/keys/masterkey"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage/pgtest"
)

// TestMain stops the throwaway PostgreSQL cluster the upgrade tests start.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// upgradeFixture is what an old binary issued into a fixture database
// (see testdata/upgrade/README.md for how they were made).
type upgradeFixture struct {
	Version      int             `json:"version"`
	Commit       string          `json:"commit"`
	Backend      string          `json:"backend"`
	Issuer       string          `json:"issuer"`
	MasterKey    string          `json:"master_key"`
	AdminAPIKey  string          `json:"admin_api_key"`
	ClientID     string          `json:"client_id"`
	ClientSecret string          `json:"client_secret"`
	RedirectURI  string          `json:"redirect_uri"`
	Subject      string          `json:"subject"`
	Scopes       []string        `json:"scopes"`
	AccessToken  string          `json:"access_token"`
	RefreshToken string          `json:"refresh_token"`
	IDToken      string          `json:"id_token"`
	Cookies      []fixtureCookie `json:"cookies"`
	SigningKIDs  []string        `json:"signing_kids"`
}

type fixtureCookie struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (fx *upgradeFixture) oauth2(base string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: fx.ClientID, ClientSecret: fx.ClientSecret, RedirectURL: fx.RedirectURI, Scopes: fx.Scopes,
		Endpoint: oauth2.Endpoint{AuthURL: base + "/oauth2/authorize", TokenURL: base + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
}

// fixtureVersions are the earlier schema versions with fixtures.
var fixtureVersions = []string{"v1", "v2", "v3", "v4"}

// TestUpgradeKeepsCredentials migrates a database written by the last
// release at every earlier schema version, on both backends, with this
// binary and then uses everything the old release issued (SPEC §8).
func TestUpgradeKeepsCredentials(t *testing.T) {
	for _, v := range fixtureVersions {
		for _, backend := range []string{"sqlite", "postgres"} {
			t.Run(v+"/"+backend, func(t *testing.T) {
				dir := filepath.Join("testdata", "upgrade", v)
				var fx upgradeFixture
				raw, err := os.ReadFile(filepath.Join(dir, backend+".json"))
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(raw, &fx); err != nil {
					t.Fatal(err)
				}
				var dsn string
				if backend == "sqlite" {
					db := filepath.Join(t.TempDir(), "latch.db")
					copyTestFile(t, filepath.Join(dir, "latch.db"), db)
					dsn = "sqlite://" + db
				} else {
					dsn = pgtest.DSN(t)
					loadDump(t, dsn, filepath.Join(dir, "postgres.sql"))
				}
				env := latchtest.Start(t, latchtest.Options{DSN: dsn, Configure: func(c *config.Config) {
					c.Issuer = fx.Issuer
					c.MasterKey = fx.MasterKey
				}})
				useFixture(t, env, &fx)
			})
		}
	}
}

func useFixture(t *testing.T, env *latchtest.Env, fx *upgradeFixture) {
	ctx := context.Background()
	// The API key issued by the old release still opens /api.
	status, body := latchtest.CallAPI(t, env.URL, fx.AdminAPIKey, "GET", "/api/clients/"+fx.ClientID, nil)
	if status != http.StatusOK {
		t.Errorf("old admin API key: GET /api/clients/%s answered %d %v", fx.ClientID, status, body)
	}

	// The old signing key is still published and verifies the old ID token.
	jwks := env.URL + "/.well-known/jwks.json"
	resp, err := http.Get(jwks)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, kid := range fx.SigningKIDs {
		if !strings.Contains(string(raw), `"`+kid+`"`) {
			t.Errorf("old signing key %s is missing from the JWKS %s", kid, raw)
		}
	}
	verifier := oidc.NewVerifier(fx.Issuer, oidc.NewRemoteKeySet(ctx, jwks), &oidc.Config{ClientID: fx.ClientID, SupportedSigningAlgs: []string{oidc.ES256, oidc.RS256}})
	if _, err := verifier.Verify(ctx, fx.IDToken); err != nil {
		t.Errorf("old ID token no longer verifies: %v", err)
	}

	// The client secret authenticates, and the old access token introspects
	// as active (its signature checks out against the old key).
	form := url.Values{"token": {fx.AccessToken}}
	req, _ := http.NewRequest("POST", env.URL+"/oauth2/introspect", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(fx.ClientID), url.QueryEscape(fx.ClientSecret))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !regexp.MustCompile(`"active":\s*true`).Match(raw) {
		t.Errorf("introspecting the old access token with the old client secret: %d %s", resp.StatusCode, raw)
	}

	// The old refresh token refreshes (client secret and token HMAC both
	// survived), and the new one it returns refreshes again.
	conf := fx.oauth2(env.URL)
	tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: fx.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("old refresh token: %v", err)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Errorf("refresh token issued after the upgrade: %v", err)
	}

	// The remembered authorization and the old login session still let a
	// silent sign-in through.
	b := latchtest.NewBrowser(t)
	u, _ := url.Parse(env.URL + "/")
	var cookies []*http.Cookie
	for _, c := range fx.Cookies {
		cookies = append(cookies, &http.Cookie{Name: c.Name, Value: c.Value, Path: "/"})
	}
	b.HTTP.Jar.SetCookies(u, cookies)
	rp := env.NewRP(latchtest.Client{ID: fx.ClientID, Secret: fx.ClientSecret, RedirectURIs: []string{fx.RedirectURI}})
	loc, pkce := rp.Silent(t, b, fx.Scopes)
	if loc.Query().Get("code") == "" {
		t.Fatalf("prompt=none with the remembered authorization: redirected to %s", loc)
	}
	silent := rp.Exchange(t, loc, pkce)
	if silent.RefreshToken == "" {
		t.Error("silent sign-in did not issue a refresh token for offline_access")
	}

	// The old login session got a sid from the migration: ID tokens issued
	// under it carry one, and the host app can end it.
	if idt, _ := silent.Extra("id_token").(string); !regexp.MustCompile(`^[^.]+\.[^.]+\.`).MatchString(idt) || !strings.Contains(jwtPayload(t, idt), `"sid":"`) {
		t.Errorf("ID token under a migrated login session has no sid: %q", idt)
	}
	if status, out := env.API("DELETE", "/api/users/"+url.PathEscape(fx.Subject)+"/sessions", nil); status != http.StatusNoContent {
		t.Fatalf("ending the migrated login session: %d %v", status, out)
	}
	if loc, _ := rp.Silent(t, b, fx.Scopes); loc.Query().Get("error") != "login_required" {
		t.Errorf("prompt=none after ending the migrated session: %s", loc)
	}
}

func jwtPayload(t *testing.T, raw string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// loadDump restores a plain pg_dump into an empty database. psql
// meta-commands (\restrict) are dropped; the rest runs as one simple-query
// batch on its own connection, since the dump empties search_path.
func loadDump(t *testing.T, dsn, path string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sql strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, `\`) {
			continue
		}
		sql.WriteString(line + "\n")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql.String()); err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
}

func copyTestFile(t *testing.T, from, to string) {
	raw, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A database that held nothing gets a random data key, not the master key:
// only databases written before the data key existed inherit it.
func TestFreshDatabaseGetsRandomDataKey(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	got, err := env.App.Provider().Config.(interface {
		GetGlobalSecret(context.Context) ([]byte, error)
	}).GetGlobalSecret(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	master, err := masterkey.Decode(latchtest.MasterKey)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, master.Derive("token-hmac")) {
		t.Error("a fresh database keys its token HMAC with the master key; a rewrap would then break it")
	}
}
