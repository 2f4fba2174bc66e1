package config

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// validKey is a well-formed master key (32 bytes of 0x01).
var validKey = base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x01", 32)))

func writeYAML(t testing.TB, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "latch.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustLoad(t *testing.T, opts LoadOptions) *Config {
	t.Helper()
	c, err := Load(opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

// loadErr loads expecting failure and returns the problems.
func loadErr(t *testing.T, opts LoadOptions) *ValidationError {
	t.Helper()
	_, err := Load(opts)
	if err == nil {
		t.Fatal("Load succeeded, want error")
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is %T, want *ValidationError", err, err)
	}
	return ve
}

func hasProblem(ve *ValidationError, key, substr string) bool {
	for _, p := range ve.Problems {
		if p.Key == key && strings.Contains(p.Message, substr) {
			return true
		}
	}
	return false
}

func flagSet(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("latch", pflag.ContinueOnError)
	BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, LoadOptions{})
	want := Default()
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Load with no input = %+v\nwant %+v", c, want)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"issuer", c.Issuer, "http://127.0.0.1:8080"},
		{"http.addr", c.HTTP.Addr, "127.0.0.1:8080"},
		{"http.read_timeout", c.HTTP.ReadTimeout, 10 * time.Second},
		{"http.read_header_timeout", c.HTTP.ReadHeaderTimeout, 5 * time.Second},
		{"http.write_timeout", c.HTTP.WriteTimeout, 30 * time.Second},
		{"http.idle_timeout", c.HTTP.IdleTimeout, 120 * time.Second},
		{"http.max_body_bytes", c.HTTP.MaxBodyBytes, int64(1 << 20)},
		{"database.dsn", c.Database.DSN, "sqlite://latch.db"},
		{"database.max_open_conns", c.Database.MaxOpenConns, 0},
		{"approval.url", c.Approval.URL, ""},
		{"approval.session_lifetime", c.Approval.SessionLifetime, 10 * time.Minute},
		{"login.session_lifetime", c.Login.SessionLifetime, 24 * time.Hour},
		{"tokens.access_token_lifetime", c.Tokens.AccessTokenLifetime, time.Hour},
		{"tokens.refresh_token_lifetime", c.Tokens.RefreshTokenLifetime, 720 * time.Hour},
		{"tokens.id_token_lifetime", c.Tokens.IDTokenLifetime, time.Hour},
		{"tokens.code_lifetime", c.Tokens.CodeLifetime, 60 * time.Second},
		{"tokens.access_token_format", c.Tokens.AccessTokenFormat, "jwt"},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "text"},
		{"keys.reload_interval", c.Keys.ReloadInterval, 30 * time.Second},
		{"janitor.interval", c.Janitor.Interval, 5 * time.Minute},
		{"janitor.batch_size", c.Janitor.BatchSize, 1000},
		{"janitor.replay_grace", c.Janitor.ReplayGrace, 24 * time.Hour},
		{"database.client_cache_ttl", c.Database.ClientCacheTTL, 2 * time.Second},
		{"pprof.enabled", c.Pprof.Enabled, false},
		{"pprof.addr", c.Pprof.Addr, "127.0.0.1:6060"},
		{"SQLitePath", c.SQLitePath(), "latch.db"},
		{"IsPostgres", c.IsPostgres(), false},
		{"ResolvedMasterKeyFile", c.ResolvedMasterKeyFile(), "latch.key"},
		{"IssuerURL", c.IssuerURL().String(), "http://127.0.0.1:8080"},
	}
	for _, tc := range checks {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if !reflect.DeepEqual(c.Scopes, BuiltinScopes()) {
		t.Errorf("scopes = %v, want built-ins", c.Scopes)
	}
	for _, s := range c.Scopes {
		if s.Description == "" {
			t.Errorf("built-in scope %q has no description", s.Name)
		}
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

func TestExampleFile(t *testing.T) {
	const path = "../config.example.yaml"
	c := mustLoad(t, LoadOptions{File: path})
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("example file does not show the defaults:\n got %+v\nwant %+v", c, Default())
	}
	// Every option must be documented with its variable, so operators can
	// find it without reading the source.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leaves {
		if !strings.Contains(string(b), l.env) {
			t.Errorf("config.example.yaml does not mention %s (%s)", l.env, l.key)
		}
	}
	for _, name := range []string{EnvScopes, EnvConfigFile} {
		if !strings.Contains(string(b), name) {
			t.Errorf("config.example.yaml does not mention %s", name)
		}
	}
}

func TestPrecedence(t *testing.T) {
	file := writeYAML(t, `
issuer: https://file.example.com
approval:
  url: https://app.example.com/approve
http:
  addr: 127.0.0.1:1001
database:
  dsn: sqlite:///file/latch.db
`)
	env := []string{
		"LATCH_ISSUER=https://env.example.com",
		"LATCH_APPROVAL_URL=https://app.example.com/approve",
		"LATCH_HTTP_ADDR=127.0.0.1:1002",
		"LATCH_DATABASE_DSN=sqlite:///env/latch.db",
	}
	flags := []string{
		"--issuer=https://flag.example.com",
		"--http-addr=127.0.0.1:1003",
		"--database-dsn=sqlite:///flag/latch.db",
	}
	type want struct{ issuer, addr, dsn string }
	tests := []struct {
		name  string
		file  string
		env   []string
		flags []string
		want  want
	}{
		{"default", "", nil, nil, want{"http://127.0.0.1:8080", "127.0.0.1:8080", "sqlite://latch.db"}},
		{"file over default", file, nil, nil, want{"https://file.example.com", "127.0.0.1:1001", "sqlite:///file/latch.db"}},
		{"env over file", file, env, nil, want{"https://env.example.com", "127.0.0.1:1002", "sqlite:///env/latch.db"}},
		{"flag over env", file, env, flags, want{"https://flag.example.com", "127.0.0.1:1003", "sqlite:///flag/latch.db"}},
		{"flag over file", file, nil, flags, want{"https://flag.example.com", "127.0.0.1:1003", "sqlite:///flag/latch.db"}},
		{"env over default", "", env, nil, want{"https://env.example.com", "127.0.0.1:1002", "sqlite:///env/latch.db"}},
		// Flag defaults shown in --help must never override anything.
		{"unset flags ignored", file, env, []string{}, want{"https://env.example.com", "127.0.0.1:1002", "sqlite:///env/latch.db"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := LoadOptions{File: tc.file, Environ: tc.env}
			if tc.flags != nil {
				opts.Flags = flagSet(t, tc.flags...)
			}
			c := mustLoad(t, opts)
			got := want{c.Issuer, c.HTTP.Addr, c.Database.DSN}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestEnvVars(t *testing.T) {
	file := writeYAML(t, "http:\n  addr: 127.0.0.1:7777\n")
	tests := []struct {
		env   string
		check func(*Config) bool
	}{
		{"LATCH_HTTP_ADDR=127.0.0.1:9999", func(c *Config) bool { return c.HTTP.Addr == "127.0.0.1:9999" }},
		{"LATCH_ISSUER=https://id.example.com", func(c *Config) bool { return c.Issuer == "https://id.example.com" }},
		{"LATCH_DATABASE_DSN=sqlite:///var/lib/latch/db.sqlite", func(c *Config) bool {
			return c.SQLitePath() == "/var/lib/latch/db.sqlite" && c.ResolvedMasterKeyFile() == "/var/lib/latch/latch.key"
		}},
		{"LATCH_APPROVAL_URL=https://app.example.com/approve", func(c *Config) bool { return c.Approval.URL == "https://app.example.com/approve" }},
		{"LATCH_API_KEY=s3cret-api-key-0123456789abcdefghij", func(c *Config) bool { return c.API.Key == "s3cret-api-key-0123456789abcdefghij" }},
		{"LATCH_MASTER_KEY=" + validKey, func(c *Config) bool { return c.MasterKey == validKey }},
		{"LATCH_MASTER_KEY_FILE=/etc/latch/key", func(c *Config) bool { return c.ResolvedMasterKeyFile() == "/etc/latch/key" }},
		{"LATCH_TOKENS_ACCESS_TOKEN_LIFETIME=15m", func(c *Config) bool { return c.Tokens.AccessTokenLifetime == 15*time.Minute }},
		{"LATCH_TOKENS_ACCESS_TOKEN_FORMAT=opaque", func(c *Config) bool { return c.Tokens.AccessTokenFormat == "opaque" }},
		{"LATCH_HTTP_READ_HEADER_TIMEOUT=2s", func(c *Config) bool { return c.HTTP.ReadHeaderTimeout == 2*time.Second }},
		{"LATCH_HTTP_MAX_BODY_BYTES=4096", func(c *Config) bool { return c.HTTP.MaxBodyBytes == 4096 }},
		{"LATCH_DATABASE_MAX_OPEN_CONNS=7", func(c *Config) bool { return c.Database.MaxOpenConns == 7 }},
		{"LATCH_LOG_FORMAT=json", func(c *Config) bool { return c.Log.Format == "json" }},
		{"LATCH_OUTBOUND_ALLOW_LOOPBACK=true", func(c *Config) bool { return c.Outbound.AllowLoopback }},
		{"LATCH_LIMITS_FAILED_CREDENTIALS_PER_IP=7", func(c *Config) bool { return c.Limits.FailedCredentialsPerIP == 7 }},
		{"LATCH_LIMITS_FAILURE_WINDOW=90s", func(c *Config) bool { return c.Limits.FailureWindow == 90*time.Second }},
		{"LATCH_SCOPES=calendar.read=Read your calendar; openid=Log you in;", func(c *Config) bool {
			want := append(BuiltinScopes(), Scope{"calendar.read", "Read your calendar"})
			want[0].Description = "Log you in"
			return reflect.DeepEqual(c.Scopes, want)
		}},
		{"LATCH_CONFIG=" + file, func(c *Config) bool { return c.HTTP.Addr == "127.0.0.1:7777" && c.Issuer == "http://127.0.0.1:7777" }},
	}
	for _, tc := range tests {
		name, _, _ := strings.Cut(tc.env, "=")
		t.Run(name, func(t *testing.T) {
			// A public issuer needs an approval page; LATCH_APPROVAL_URL's own
			// case comes later in the list and so still decides.
			environ := []string{"LATCH_APPROVAL_URL=https://app.example.com/approve", tc.env, "PATH=/bin", "HOME=/root"}
			c := mustLoad(t, LoadOptions{Environ: environ})
			if !tc.check(c) {
				t.Errorf("%s not applied: %+v", tc.env, c)
			}
		})
	}
}

// Every leaf must be reachable through its documented variable name.
func TestEveryLeafHasEnv(t *testing.T) {
	if len(leaves) < 20 {
		t.Fatalf("only %d leaves found", len(leaves))
	}
	// Options whose variable is named by an env tag: ones deployments
	// expect, and the names SPEC §1 fixes.
	renamed := map[string]string{
		"http.admin_addr":               "LATCH_ADMIN_ADDR",
		"tokens.id_token_signing_alg":   "LATCH_ID_TOKEN_SIGNING_ALG",
		"tokens.refresh_reuse_interval": "LATCH_REFRESH_REUSE_INTERVAL",
	}
	for _, l := range leaves {
		want := "LATCH_" + strings.ToUpper(strings.ReplaceAll(l.key, ".", "_"))
		if r, ok := renamed[l.key]; ok {
			want = r
		}
		if l.env != want {
			t.Errorf("%s: env %s, want %s", l.key, l.env, want)
		}
	}
	c := mustLoad(t, LoadOptions{Environ: []string{"LATCH_ID_TOKEN_SIGNING_ALG=ES256", "LATCH_REFRESH_REUSE_INTERVAL=30s"}})
	if c.Tokens.IDTokenSigningAlg != "ES256" || c.Tokens.RefreshReuseInterval != 30*time.Second {
		t.Errorf("SPEC-named variables not applied: %+v", c.Tokens)
	}
	for env, key := range map[string]string{"LATCH_ID_TOKEN_SIGNING_ALG=HS256": "tokens.id_token_signing_alg", "LATCH_REFRESH_REUSE_INTERVAL=1h": "tokens.refresh_reuse_interval"} {
		if _, err := Load(LoadOptions{Environ: []string{env}}); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v, want an error naming %s", env, err, key)
		}
	}
	if _, ok := leafByEnv["LATCH_TOKENS_ACCESS_TOKEN_LIFETIME"]; !ok {
		t.Error("LATCH_TOKENS_ACCESS_TOKEN_LIFETIME not recognised")
	}
}

func TestConfigFlagAndFileOption(t *testing.T) {
	envFile := writeYAML(t, "http:\n  addr: 127.0.0.1:1\n")
	flagFile := writeYAML(t, "http:\n  addr: 127.0.0.1:2\n")
	optFile := writeYAML(t, "http:\n  addr: 127.0.0.1:3\n")
	env := []string{"LATCH_CONFIG=" + envFile}

	c := mustLoad(t, LoadOptions{Environ: env, Flags: flagSet(t, "--config", flagFile)})
	if c.HTTP.Addr != "127.0.0.1:2" {
		t.Errorf("--config did not override LATCH_CONFIG: addr %s", c.HTTP.Addr)
	}
	c = mustLoad(t, LoadOptions{Environ: env, Flags: flagSet(t, "--config", flagFile), File: optFile})
	if c.HTTP.Addr != "127.0.0.1:3" {
		t.Errorf("LoadOptions.File not preferred: addr %s", c.HTTP.Addr)
	}
}

func TestMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(LoadOptions{File: path})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v does not name %s", err, path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
}

func TestMalformedYAML(t *testing.T) {
	path := writeYAML(t, "http: [\n")
	if _, err := Load(LoadOptions{File: path}); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v does not name %s", err, path)
	}
}

func TestUnknownYAMLKeys(t *testing.T) {
	tests := []struct {
		name, yaml, key string
	}{
		{"top level", "isuer: https://x.example.com\n", "isuer"},
		{"nested", "http:\n  adr: 127.0.0.1:1\n", "http.adr"},
		{"unknown section", "metrics:\n  enabled: true\n", "metrics"},
		{"scope entry", "scopes:\n  - name: a\n    descripton: b\n", "scopes[0].descripton"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ve := loadErr(t, LoadOptions{File: writeYAML(t, tc.yaml)})
			if !hasProblem(ve, tc.key, "unknown key") {
				t.Errorf("no unknown-key problem for %s in %v", tc.key, ve)
			}
		})
	}
	ve := loadErr(t, LoadOptions{File: writeYAML(t, "http:\n  adr: x\n")})
	if !strings.Contains(ve.Error(), `did you mean "http.addr"`) {
		t.Errorf("no suggestion in %v", ve)
	}
}

func TestUnknownEnv(t *testing.T) {
	ve := loadErr(t, LoadOptions{Environ: []string{"LATCH_DATABSE_DSN=sqlite://x.db", "LATCH_CONFIG=", "NOT_LATCH=1"}})
	if !strings.Contains(ve.Error(), "unknown environment variable LATCH_DATABSE_DSN") {
		t.Errorf("error %q lacks the unknown variable", ve)
	}
	if !strings.Contains(ve.Error(), "LATCH_DATABASE_DSN?") {
		t.Errorf("error %q lacks a suggestion", ve)
	}
	if len(ve.Problems) != 1 {
		t.Errorf("want exactly one problem, got %v", ve.Problems)
	}
}

func TestMultipleProblemsTogether(t *testing.T) {
	file := writeYAML(t, `
http:
  addr: "no-port"
  read_timeout: 0s
tokens:
  code_lifetime: 1h
  access_token_format: paseto
log:
  level: loud
unknown_thing: 1
`)
	ve := loadErr(t, LoadOptions{
		File:    file,
		Environ: []string{"LATCH_ISSUER=ftp://example.com", "LATCH_LOG_FORMAT=xml", "LATCH_NOPE=1"},
	})
	wantKeys := []string{
		"http.addr", "http.read_timeout", "tokens.code_lifetime", "tokens.access_token_format",
		"log.level", "log.format", "issuer", "unknown_thing", "LATCH_NOPE",
	}
	for _, k := range wantKeys {
		if !strings.Contains(ve.Error(), k) {
			t.Errorf("error does not mention %s:\n%v", k, ve)
		}
	}
	if len(ve.Problems) < 3 {
		t.Fatalf("want at least 3 problems, got %d", len(ve.Problems))
	}
	if !hasProblem(ve, "log.format", "set by LATCH_LOG_FORMAT") {
		t.Errorf("env-sourced problem does not name its variable:\n%v", ve)
	}
}

func TestValidationRules(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		key  string // problem key expected; "" means valid
		msg  string
	}{
		{"https issuer", []string{"LATCH_ISSUER=https://auth.example.com/tenant", "LATCH_APPROVAL_URL=https://app.example.com/approve"}, "", ""},
		// The development consent page approves anyone as anyone: only a
		// loopback issuer may go without an approval page (SPEC §1).
		{"public issuer without approval page", []string{"LATCH_ISSUER=https://auth.example.com"}, "approval.url", "LATCH_APPROVAL_URL"},
		{"localhost-looking issuer without approval page", []string{"LATCH_ISSUER=https://localhost.example.com"}, "approval.url", "loopback"},
		{"private address issuer without approval page", []string{"LATCH_ISSUER=https://10.0.0.5:8443"}, "approval.url", "LATCH_APPROVAL_URL"},
		{"loopback issuers without approval page", []string{"LATCH_ISSUER=http://127.1.2.3:8080"}, "", ""},
		{"https ipv6 loopback without approval page", []string{"LATCH_ISSUER=https://[::1]:8443"}, "", ""},
		{"https localhost without approval page", []string{"LATCH_ISSUER=https://LOCALHOST:8443"}, "", ""},
		{"negative limit", []string{"LATCH_LIMITS_AUTHORIZE_PER_MINUTE=-1"}, "limits.authorize_per_minute", "0 (off)"},
		{"limits off", []string{"LATCH_LIMITS_AUTHORIZE_PER_MINUTE=0", "LATCH_LIMITS_PAR_PER_MINUTE=0", "LATCH_LIMITS_FAILED_CREDENTIALS_PER_IP=0", "LATCH_LIMITS_FAILED_CREDENTIALS_PER_CLIENT=0"}, "", ""},
		{"no tracked ips", []string{"LATCH_LIMITS_TRACKED_IPS=0"}, "limits.tracked_ips", "greater than 0"},
		{"failure window too long", []string{"LATCH_LIMITS_FAILURE_WINDOW=48h"}, "limits.failure_window", "24h"},
		{"failure sync beyond window", []string{"LATCH_LIMITS_FAILURE_WINDOW=10s", "LATCH_LIMITS_FAILURE_SYNC=1m"}, "limits.failure_sync", "at most"},
		{"weak api key", []string{"LATCH_API_KEY=admin"}, "api.key", "at least 32 characters, got 5"},
		{"31-character api key", []string{"LATCH_API_KEY=" + strings.Repeat("k", 31)}, "api.key", "at least 32"},
		{"32-character api key", []string{"LATCH_API_KEY=" + strings.Repeat("k", 32)}, "", ""},
		{"http localhost issuer", []string{"LATCH_ISSUER=http://localhost:8080"}, "", ""},
		{"http ipv6 loopback issuer", []string{"LATCH_ISSUER=http://[::1]:8080"}, "", ""},
		{"http public issuer", []string{"LATCH_ISSUER=http://auth.example.com"}, "issuer", "https"},
		{"relative issuer", []string{"LATCH_ISSUER=/auth"}, "issuer", "absolute"},
		{"issuer trailing slash", []string{"LATCH_ISSUER=https://auth.example.com/"}, "issuer", "slash"},
		{"issuer query", []string{"LATCH_ISSUER=https://auth.example.com?a=b"}, "issuer", "query"},
		{"issuer fragment", []string{"LATCH_ISSUER=https://auth.example.com#x"}, "issuer", "fragment"},
		{"derived issuer on public addr", []string{"LATCH_HTTP_ADDR=0.0.0.0:8080"}, "issuer", "derived from http.addr"},
		{"sqlite without path", []string{"LATCH_DATABASE_DSN=sqlite://"}, "database.dsn", "path"},
		{"mysql", []string{"LATCH_DATABASE_DSN=mysql://u:hunter2@h/db"}, "database.dsn", "mysql"},
		{"postgres with key", []string{"LATCH_DATABASE_DSN=postgres://h/db", "LATCH_MASTER_KEY=" + validKey}, "", ""},
		{"postgresql with key", []string{"LATCH_DATABASE_DSN=postgresql://h/db", "LATCH_MASTER_KEY=" + validKey}, "", ""},
		{"postgres without key", []string{"LATCH_DATABASE_DSN=postgres://h/db"}, "master_key", "PostgreSQL"},
		{"url-safe unpadded key", []string{"LATCH_MASTER_KEY=" + base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("\xfb", 32)))}, "", ""},
		{"short key", []string{"LATCH_MASTER_KEY=" + base64.StdEncoding.EncodeToString([]byte("short"))}, "master_key", "32 bytes"},
		{"non-base64 key", []string{"LATCH_MASTER_KEY=not base64!!"}, "master_key", "base64"},
		{"approval relative", []string{"LATCH_APPROVAL_URL=/approve"}, "approval.url", "absolute"},
		{"approval ftp", []string{"LATCH_APPROVAL_URL=ftp://x.example.com/a"}, "approval.url", "http"},
		{"approval fragment", []string{"LATCH_APPROVAL_URL=https://x.example.com/a#b"}, "approval.url", "fragment"},
		{"zero duration", []string{"LATCH_LOGIN_SESSION_LIFETIME=0s"}, "login.session_lifetime", "greater than 0"},
		{"zero key reload interval", []string{"LATCH_KEYS_RELOAD_INTERVAL=0s"}, "keys.reload_interval", "greater than 0"},
		{"negative janitor interval", []string{"LATCH_JANITOR_INTERVAL=-1s"}, "janitor.interval", "0 (disabled) or more"},
		{"zero janitor batch", []string{"LATCH_JANITOR_BATCH_SIZE=0"}, "janitor.batch_size", "greater than 0"},
		{"negative duration", []string{"LATCH_TOKENS_ID_TOKEN_LIFETIME=-1h"}, "tokens.id_token_lifetime", "greater than 0"},
		{"bad duration", []string{"LATCH_HTTP_IDLE_TIMEOUT=forever"}, "http.idle_timeout", "not a duration"},
		{"code lifetime cap", []string{"LATCH_TOKENS_CODE_LIFETIME=11m"}, "tokens.code_lifetime", "at most 10m"},
		{"code lifetime at cap", []string{"LATCH_TOKENS_CODE_LIFETIME=10m"}, "", ""},
		{"approval session cap", []string{"LATCH_APPROVAL_SESSION_LIFETIME=2h"}, "approval.session_lifetime", "at most 1h"},
		{"addr without port", []string{"LATCH_HTTP_ADDR=localhost", "LATCH_ISSUER=http://localhost"}, "http.addr", "host:port"},
		{"addr bad port", []string{"LATCH_HTTP_ADDR=localhost:http99", "LATCH_ISSUER=http://localhost"}, "http.addr", "port"},
		{"zero body", []string{"LATCH_HTTP_MAX_BODY_BYTES=0"}, "http.max_body_bytes", "greater than 0"},
		{"non-integer body", []string{"LATCH_HTTP_MAX_BODY_BYTES=1MB"}, "http.max_body_bytes", "integer"},
		{"negative pool", []string{"LATCH_DATABASE_MAX_IDLE_CONNS=-1"}, "database.max_idle_conns", "0"},
		{"negative lifetime", []string{"LATCH_DATABASE_CONN_MAX_LIFETIME=-1s"}, "database.conn_max_lifetime", "0"},
		{"client cache off", []string{"LATCH_DATABASE_CLIENT_CACHE_TTL=0s"}, "", ""},
		{"client cache too long", []string{"LATCH_DATABASE_CLIENT_CACHE_TTL=2m"}, "database.client_cache_ttl", "between 0 (off) and 1m0s"},
		{"pprof on loopback", []string{"LATCH_PPROF_ENABLED=true", "LATCH_PPROF_ADDR=127.0.0.1:6061"}, "", ""},
		{"pprof on ipv6 loopback", []string{"LATCH_PPROF_ENABLED=true", "LATCH_PPROF_ADDR=[::1]:6061"}, "", ""},
		{"pprof public", []string{"LATCH_PPROF_ENABLED=true", "LATCH_PPROF_ADDR=0.0.0.0:6060"}, "pprof.addr", "loopback"},
		{"pprof public but off", []string{"LATCH_PPROF_ENABLED=false", "LATCH_PPROF_ADDR=0.0.0.0:6060"}, "", ""},
		{"pprof not a bool", []string{"LATCH_PPROF_ENABLED=yes please"}, "pprof.enabled", "boolean"},
		{"bad token format", []string{"LATCH_TOKENS_ACCESS_TOKEN_FORMAT=paseto"}, "tokens.access_token_format", "jwt, opaque"},
		{"bad log level", []string{"LATCH_LOG_LEVEL=trace"}, "log.level", "trace"},
		{"bad scope name", []string{`LATCH_SCOPES=ok=fine;bad"name=x`}, "LATCH_SCOPES[1]", "RFC 6749"},
		{"empty scope name", []string{"LATCH_SCOPES==desc"}, "LATCH_SCOPES[0]", "empty"},
		{"duplicate env scope", []string{"LATCH_SCOPES=a=1;a=2"}, "LATCH_SCOPES[1]", "duplicate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(LoadOptions{Environ: tc.env})
			if tc.key == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error = %v, want *ValidationError", err)
			}
			if !hasProblem(ve, tc.key, tc.msg) {
				t.Errorf("no problem %s containing %q in:\n%v", tc.key, tc.msg, ve)
			}
		})
	}
}

func TestPostgresRequiresMasterKey(t *testing.T) {
	ve := loadErr(t, LoadOptions{Environ: []string{"LATCH_DATABASE_DSN=postgres://latch:pw@db/latch"}})
	if !hasProblem(ve, "master_key", "required") {
		t.Fatalf("no master_key problem: %v", ve)
	}
	c := mustLoad(t, LoadOptions{Environ: []string{
		"LATCH_DATABASE_DSN=postgresql://latch:pw@db/latch", "LATCH_MASTER_KEY=" + validKey,
	}})
	if !c.IsPostgres() || c.PostgresDSN() != "postgresql://latch:pw@db/latch" || c.SQLitePath() != "" {
		t.Errorf("postgres accessors wrong: %v %q %q", c.IsPostgres(), c.PostgresDSN(), c.SQLitePath())
	}
	if c.ResolvedMasterKeyFile() != "" {
		t.Errorf("ResolvedMasterKeyFile on postgres = %q, want empty", c.ResolvedMasterKeyFile())
	}
	if strings.Contains(ve.Error(), "pw@") {
		t.Errorf("error leaks DSN password: %v", ve)
	}
}

func TestSecretsNeverEchoed(t *testing.T) {
	secrets := []string{
		"c2hvcnQtYnV0LXZhbGlkLWJhc2U2NA==",                  // valid base64, wrong length
		"this is not base64 at all ###",                     // invalid base64
		base64.StdEncoding.EncodeToString(make([]byte, 33)), // one byte too long
	}
	for _, s := range secrets {
		ve := loadErr(t, LoadOptions{Environ: []string{"LATCH_MASTER_KEY=" + s, "LATCH_LOG_LEVEL=nope"}})
		if !hasProblem(ve, "master_key", "") {
			t.Errorf("no master_key problem for %q", s)
		}
		if strings.Contains(ve.Error(), s) || strings.Contains(ve.Error(), strings.TrimRight(s, "=")) {
			t.Errorf("error echoes the master key: %v", ve)
		}
	}
	// Wrong YAML types for secrets must not be echoed either.
	file := writeYAML(t, "master_key: [topsecretvalue]\napi:\n  key: {k: othersecret}\n")
	ve := loadErr(t, LoadOptions{File: file})
	for _, s := range []string{"topsecretvalue", "othersecret"} {
		if strings.Contains(ve.Error(), s) {
			t.Errorf("error echoes %s: %v", s, ve)
		}
	}
	if !hasProblem(ve, "master_key", "string") || !hasProblem(ve, "api.key", "string") {
		t.Errorf("missing type problems: %v", ve)
	}
}

func TestDefaultIssuerFollowsAddr(t *testing.T) {
	tests := []struct {
		opts LoadOptions
		want string
	}{
		{LoadOptions{Environ: []string{"LATCH_HTTP_ADDR=127.0.0.1:9000"}}, "http://127.0.0.1:9000"},
		{LoadOptions{Flags: flagSet(t, "--http-addr=localhost:9001")}, "http://localhost:9001"},
		{LoadOptions{File: writeYAML(t, "http:\n  addr: '[::1]:9002'\n")}, "http://[::1]:9002"},
		{LoadOptions{Environ: []string{"LATCH_HTTP_ADDR=127.0.0.1:9000", "LATCH_ISSUER=https://id.example.com", "LATCH_APPROVAL_URL=https://app.example.com/a"}}, "https://id.example.com"},
	}
	for _, tc := range tests {
		if c := mustLoad(t, tc.opts); c.Issuer != tc.want {
			t.Errorf("issuer = %q, want %q", c.Issuer, tc.want)
		}
	}
}

func TestFileScopes(t *testing.T) {
	file := writeYAML(t, `
scopes:
  - name: calendar.read
    description: Read your calendar
  - name: email
    description: See your email address
`)
	c := mustLoad(t, LoadOptions{File: file, Environ: []string{"LATCH_SCOPES=calendar.read=Read calendars;extra=Extra"}})
	want := BuiltinScopes()
	want[2].Description = "See your email address"
	want = append(want, Scope{"calendar.read", "Read calendars"}, Scope{"extra", "Extra"})
	if !reflect.DeepEqual(c.Scopes, want) {
		t.Errorf("scopes = %v\nwant %v", c.Scopes, want)
	}

	bad := writeYAML(t, `
scopes:
  - name: a
  - name: a
  - name: "has space"
  - description: no name
  - just-a-string
`)
	ve := loadErr(t, LoadOptions{File: bad})
	for _, p := range []struct{ key, msg string }{
		{"scopes[1].name", "duplicate"},
		{"scopes[2].name", "RFC 6749"},
		{"scopes[3].name", "empty"},
		{"scopes[4]", "mapping"},
	} {
		if !hasProblem(ve, p.key, p.msg) {
			t.Errorf("no %s problem %q in:\n%v", p.key, p.msg, ve)
		}
	}
}

func TestYAMLTypes(t *testing.T) {
	file := writeYAML(t, `
http:
  read_timeout: 10
  max_body_bytes: "2048"
database:
  max_open_conns: 1.5
tokens: jwt
log:
  level:
`)
	ve := loadErr(t, LoadOptions{File: file})
	for _, p := range []struct{ key, msg string }{
		{"http.read_timeout", "duration string"},
		{"database.max_open_conns", "integer"},
		{"tokens", "mapping"},
	} {
		if !hasProblem(ve, p.key, p.msg) {
			t.Errorf("no %s problem %q in:\n%v", p.key, p.msg, ve)
		}
	}
	if len(ve.Problems) != 3 {
		t.Errorf("want 3 problems (quoted integer and null are fine), got:\n%v", ve)
	}
}

func TestValidateHandBuilt(t *testing.T) {
	c := Default()
	c.Issuer = ""
	c.Scopes = append(c.Scopes, Scope{Name: "openid"})
	c.Log.Format = "yaml"
	err := c.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 3 {
		t.Fatalf("Validate = %v, want 3 problems", err)
	}
}

func FuzzLoadYAML(f *testing.F) {
	if b, err := os.ReadFile("../config.example.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"", "~", "[]", "- a", "http: 1", "http: {addr: [1]}", "scopes: {a: b}",
		"scopes: [1, {name: x}, {name: [1]}]", "a.b: 1", "http.addr: x", "1: 2",
		"? [a]\n: b", "http:\n  ? {x: 1}\n  : 2", "tokens: {code_lifetime: 1e400}",
		"database: {max_open_conns: 99999999999999999999}", "&a [*a]", "issuer: 2001-12-14",
		"x: &a {b: *a}", "log: {level: !!binary aGk=}",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		// A unique file per input: fuzz workers run in parallel processes.
		tmp, err := os.CreateTemp(dir, "fuzz-*.yaml")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(tmp.Name())
		if _, err := tmp.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := tmp.Close(); err != nil {
			t.Fatal(err)
		}
		c, err := Load(LoadOptions{File: tmp.Name()})
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Load succeeded but Validate fails: %v", verr)
			}
		}
	})
}

// The two fail-open settings of a public deployment (no approval page, a
// guessable admin key) are refused together, each naming what to set, and
// the key itself is never echoed.
func TestFailOpenSettingsRefused(t *testing.T) {
	ve := loadErr(t, LoadOptions{Environ: []string{"LATCH_ISSUER=https://id.example.com", "LATCH_API_KEY=hunter2hunter2"}})
	if !hasProblem(ve, "approval.url", "LATCH_APPROVAL_URL") || !hasProblem(ve, "api.key", "(set by LATCH_API_KEY)") {
		t.Errorf("want both problems:\n%v", ve)
	}
	if strings.Contains(ve.Error(), "hunter2") {
		t.Errorf("the API key is echoed:\n%v", ve)
	}
}
