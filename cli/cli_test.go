package cli_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/cli"
)

const masterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func run(t *testing.T, ctx context.Context, environ []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Execute(ctx, args, environ, &out, &errb)
	return code, out.String(), errb.String()
}

func tempEnv(t *testing.T) []string {
	return []string{"LATCH_DATABASE_DSN=sqlite://" + filepath.Join(t.TempDir(), "latch.db"), "LATCH_MASTER_KEY=" + masterKey}
}

func TestVersionAndMigrate(t *testing.T) {
	if code, out, _ := run(t, context.Background(), nil, "version"); code != 0 || !strings.HasPrefix(out, "latch ") {
		t.Errorf("version: %d %q", code, out)
	}
	env := tempEnv(t)
	code, out, errOut := run(t, context.Background(), env, "migrate")
	if code != 0 || !strings.Contains(out, "database schema at version") {
		t.Fatalf("migrate: %d %q %q", code, out, errOut)
	}
	if code, _, _ := run(t, context.Background(), env, "migrate"); code != 0 {
		t.Error("second migrate failed")
	}
}

func TestBadConfigurationIsOneReadableError(t *testing.T) {
	code, out, errOut := run(t, context.Background(), []string{"LATCH_ISSUER=ftp://x", "LATCH_DATABSE_DSN=x"}, "migrate")
	if code == 0 || out != "" {
		t.Fatalf("bad config accepted: %d %q", code, out)
	}
	for _, want := range []string{"latch: invalid configuration", "issuer", "LATCH_DATABSE_DSN"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("error output lacks %q:\n%s", want, errOut)
		}
	}
	if code, _, errOut := run(t, context.Background(), nil, "no-such-command"); code == 0 || !strings.HasPrefix(errOut, "latch: ") {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
}

// `latch` with no subcommand serves, becomes ready, and stops cleanly.
func TestServeStartsAndStops(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	env := append(tempEnv(t), "LATCH_HTTP_ADDR="+addr)
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg   sync.WaitGroup
		code int
		out  string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		code, out, _ = run(t, ctx, env)
	}()
	ready := false
	// Up to 10 s: a first start generates an RSA key, slow on a loaded machine.
	for i := 0; i < 500 && !ready; i++ {
		if resp, err := http.Get("http://" + addr + "/health/ready"); err == nil {
			resp.Body.Close()
			ready = resp.StatusCode == 200
		}
		if !ready {
			time.Sleep(20 * time.Millisecond)
		}
	}
	cancel()
	wg.Wait()
	if !ready {
		t.Fatal("server never became ready")
	}
	if code != 0 || !strings.Contains(out, "Demo client") || !strings.Contains(out, "Admin API key") {
		t.Errorf("serve: exit %d, output %q", code, out)
	}
}
