package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/latchhq/latch/cli"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
)

// latch runs the real command line against a temp database.
type latch struct {
	t       *testing.T
	environ []string
}

func newLatch(t *testing.T) *latch {
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "x.db")
	return &latch{t: t, environ: []string{"LATCH_DATABASE_DSN=" + dsn, "LATCH_MASTER_KEY=" + latchtest.MasterKey, "LATCH_LOG_LEVEL=error", "USER=ops"}}
}

func (l *latch) run(args ...string) (code int, stdout, stderr string) {
	l.t.Helper()
	var out, errb bytes.Buffer
	code = cli.Execute(context.Background(), args, l.environ, &out, &errb)
	return code, out.String(), errb.String()
}

func (l *latch) ok(args ...string) string {
	l.t.Helper()
	code, out, errOut := l.run(args...)
	if code != 0 {
		l.t.Fatalf("latch %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// fails checks a one-line error with a non-zero exit.
func (l *latch) fails(want string, args ...string) {
	l.t.Helper()
	code, _, errOut := l.run(args...)
	if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, want) {
		l.t.Errorf("latch %s: exit %d, stderr %q; want one line with %q", strings.Join(args, " "), code, errOut, want)
	}
}

func TestClientsCommands(t *testing.T) {
	l := newLatch(t)
	out := l.ok("clients", "create", "--name", "CLI app", "--redirect-uri", "https://app.example/cb",
		"--grant-type", "authorization_code,refresh_token", "--owner", "alice", "--scope", "openid profile")
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create output is not JSON: %v\n%s", err, out)
	}
	id, _ := created["client_id"].(string)
	if id == "" || created["client_secret"] == nil || created["owner"] != "alice" {
		t.Fatalf("create: %v", created)
	}
	pub := l.ok("clients", "create", "--name", "Native", "--redirect-uri", "http://127.0.0.1/cb", "--auth-method", "none")
	if strings.Contains(pub, "client_secret\"") {
		t.Errorf("public client got a secret: %s", pub)
	}

	list := l.ok("clients", "list")
	if !strings.Contains(list, id) || !strings.Contains(list, "CLI app") || !strings.Contains(list, "Native") {
		t.Errorf("list:\n%s", list)
	}
	if list := l.ok("clients", "list", "--owner", "alice"); strings.Contains(list, "Native") || !strings.Contains(list, id) {
		t.Errorf("list --owner alice:\n%s", list)
	}
	show := l.ok("clients", "show", id)
	if !strings.Contains(show, `"client_name": "CLI app"`) || strings.Contains(show, `"client_secret"`) {
		t.Errorf("show:\n%s", show)
	}
	if out := l.ok("clients", "delete", id); !strings.Contains(out, id) {
		t.Errorf("delete: %s", out)
	}
	l.fails(`no client with id "`+id+`"`, "clients", "show", id)
	l.fails(`no client with id "`+id+`"`, "clients", "delete", id)
	l.fails("redirect_uris", "clients", "create", "--name", "Bad", "--redirect-uri", "http://evil.example/cb")
	l.fails("accepts 1 arg", "clients", "show")

	strict := l.ok("clients", "create", "--name", "Bank", "--redirect-uri", "https://bank.example/cb",
		"--dpop-bound", "--require-par", "--id-token-alg", "RS256")
	var sc map[string]any
	if err := json.Unmarshal([]byte(strict), &sc); err != nil {
		t.Fatalf("create output is not JSON: %v\n%s", err, strict)
	}
	if sc["dpop_bound_access_tokens"] != true || sc["require_pushed_authorization_requests"] != true || sc["id_token_signed_response_alg"] != "RS256" {
		t.Errorf("create with sender-constraint flags: %v", sc)
	}
	l.fails("id_token_signed_response_alg", "clients", "create", "--name", "Bad", "--redirect-uri", "https://bank.example/cb", "--id-token-alg", "HS256")

	rp := l.ok("clients", "create", "--name", "RP", "--redirect-uri", "https://rp.example/cb",
		"--post-logout-redirect-uri", "https://rp.example/bye", "--backchannel-logout-uri", "https://rp.example/bc",
		"--backchannel-logout-session-required")
	var rc map[string]any
	if err := json.Unmarshal([]byte(rp), &rc); err != nil {
		t.Fatalf("create output is not JSON: %v\n%s", err, rp)
	}
	if uris, _ := rc["post_logout_redirect_uris"].([]any); len(uris) != 1 || rc["backchannel_logout_uri"] != "https://rp.example/bc" || rc["backchannel_logout_session_required"] != true {
		t.Errorf("create with logout flags: %v", rc)
	}
	l.fails("backchannel_logout_uri", "clients", "create", "--name", "Bad", "--redirect-uri", "https://rp.example/cb", "--backchannel-logout-uri", "http://rp.example/bc")
}

func TestKeysCommands(t *testing.T) {
	l := newLatch(t)
	before := l.ok("keys", "list")
	if strings.Count(before, "ES256") != 1 || strings.Count(before, "RS256") != 1 || strings.Count(before, "true") != 2 {
		t.Fatalf("keys list on a fresh database (one current key per algorithm, made at start):\n%s", before)
	}
	// By default a manual rotation pre-publishes (keys.pre_publication):
	// the new key is listed but not yet signing.
	out := l.ok("keys", "rotate")
	kid := regexp.MustCompile(`key (\S+) signs`).FindStringSubmatch(out)
	if kid == nil {
		t.Fatalf("rotate: %s", out)
	}
	if line := lineWith(l.ok("keys", "list"), kid[1]); !strings.Contains(line, "false") {
		t.Errorf("a default rotation must pre-publish, not sign at once: %q", line)
	}
	out = l.ok("keys", "rotate", "--pre-publish", "0", "--retire-after", "2h")
	kid = regexp.MustCompile(`key (\S+) signs`).FindStringSubmatch(out)
	if kid == nil {
		t.Fatalf("rotate: %s", out)
	}
	after := l.ok("keys", "list")
	if strings.Count(after, "ES256") != 3 || !strings.Contains(lineWith(after, kid[1]), "true") || strings.Count(after, "true") != 2 {
		t.Errorf("the new key must be the one current ES256 key:\n%s", after)
	}
	l.fails("--alg must be", "keys", "rotate", "--alg", "HS256")
	// Retiring old keys before the tokens they signed expire is refused.
	l.fails("shorter than the longest token lifetime", "keys", "rotate", "--retire-after", "0s")
}

func lineWith(text, s string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

func TestAPIKeyCommands(t *testing.T) {
	l := newLatch(t)
	out := l.ok("apikey", "create", "--name", "ci")
	m := regexp.MustCompile(`id:\s+(\S+)\nname:\s+ci\nkey:\s+(latch_\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("create: %s", out)
	}
	id, key := m[1], m[2]
	l.ok("apikey", "create", "--name", "deploy")
	list := l.ok("apikey", "list")
	if !strings.Contains(list, id) || !strings.Contains(list, "deploy") || strings.Contains(list, key) {
		t.Errorf("list (must not show keys):\n%s", list)
	}

	// The key works against a server on the same database until revoked.
	env := latchtest.Start(t, latchtest.Options{DSN: strings.TrimPrefix(l.environ[0], "LATCH_DATABASE_DSN=")})
	if status, _ := env.APIWithKey(key, "GET", "/api/clients", nil); status != 200 {
		t.Fatalf("created key: %d", status)
	}
	if out := l.ok("apikey", "revoke", id); !strings.Contains(out, id) {
		t.Errorf("revoke: %s", out)
	}
	if status, _ := env.APIWithKey(key, "GET", "/api/clients", nil); status != 401 {
		t.Errorf("revoked key: %d, want 401", status)
	}
	if !regexp.MustCompile(id + `\s+ci\s+\S+\s+\d{4}-`).MatchString(l.ok("apikey", "list")) {
		t.Errorf("revoked key not shown as revoked")
	}
	l.fails(`no active API key with id "`+id+`"`, "apikey", "revoke", id)
	l.fails("--name is required", "apikey", "create")

	// The CLI's own actions are in the audit log, attributed to the CLI user.
	status, page := env.API("GET", "/api/audit?event=api_key.revoked", nil)
	evs, _ := page["events"].([]any)
	if status != 200 || len(evs) != 1 || evs[0].(map[string]any)["actor_type"] != "cli" || evs[0].(map[string]any)["actor_id"] != "ops" {
		t.Errorf("audit of the CLI revoke: %d %v", status, page)
	}
}

func TestRegistrationTokenCommands(t *testing.T) {
	l := newLatch(t)
	out := l.ok("registration-tokens", "create", "--max-uses", "1", "--expires-in", "1h")
	m := regexp.MustCompile(`id:\s+(\S+)\nexpires:\s+\d{4}-\S+\nmax uses: 1 .*\ntoken:\s+(latch_reg_\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("create: %s", out)
	}
	id, tok := m[1], m[2]
	if list := l.ok("registration-tokens", "list"); !strings.Contains(list, id) || strings.Contains(list, tok) {
		t.Errorf("list (must not show tokens):\n%s", list)
	}
	// The token registers a client at a server on the same database.
	env := latchtest.Start(t, latchtest.Options{DSN: strings.TrimPrefix(l.environ[0], "LATCH_DATABASE_DSN="),
		Configure: func(c *config.Config) { c.Registration = config.RegistrationToken }})
	body := strings.NewReader(`{"client_name":"CLI","redirect_uris":["https://client.example/cb"]}`)
	req, _ := http.NewRequest("POST", env.URL+"/oauth2/register", body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("register with the CLI's token: %d", resp.StatusCode)
	}
	if out := l.ok("registration-tokens", "revoke", id); !strings.Contains(out, id) {
		t.Errorf("revoke: %s", out)
	}
	l.fails(`no registration token with id "`+id+`"`, "registration-tokens", "revoke", id)
}
