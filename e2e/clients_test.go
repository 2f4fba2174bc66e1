package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchhq/latch/latchtest"
)

// TestNodeOpenIDClient runs e2e/clients (openid-client 6, Node's built-in
// test runner) against a real Latch on loopback: discovery, authorization
// URL without state, callback with iss, code exchange with
// client_secret_post, RS256 and ES256 ID tokens, userinfo, refresh,
// revocation, a CORS preflight and the README's SPA snippet. Without node
// and npm it skips, except under CI=true, where it fails; `.ci/run`
// installs the packages (npm ci) first.
func TestNodeOpenIDClient(t *testing.T) {
	dir, err := filepath.Abs("clients")
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not installed")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		missing(t, "npm is not installed")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openid-client")); err != nil {
		missing(t, "e2e/clients has no node_modules: run `npm ci` there")
	}
	env := latchtest.Start(t, latchtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LATCH_E2E_ISSUER="+env.URL, "LATCH_E2E_API_KEY="+latchtest.APIKey, "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	t.Logf("node --test:\n%s", out)
	if err != nil {
		t.Fatalf("node --test failed: %v", err)
	}
}

// missing skips locally and fails in CI, where the tools must be there.
func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: the Node interop suite must run)", why)
	}
	t.Skip(why)
}
