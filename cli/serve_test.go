package cli_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/cli"
	"github.com/latchhq/latch/latchtest"
)

// server is one `latch serve` run by the real command line.
type server struct {
	cancel context.CancelFunc
	done   chan int
	out    *latchtest.SyncBuffer
	errOut *latchtest.SyncBuffer
	code   int
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs `latch serve` until stop is called or the test ends.
func startServe(t *testing.T, environ []string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{cancel: cancel, done: make(chan int, 1), out: &latchtest.SyncBuffer{}, errOut: &latchtest.SyncBuffer{}}
	go func() { s.done <- cli.Execute(ctx, append([]string{"serve"}, args...), environ, s.out, s.errOut) }()
	t.Cleanup(func() { s.stop() })
	return s
}

// stop sends the equivalent of SIGTERM and waits for serve to return.
func (s *server) stop() int {
	s.cancel()
	if s.done != nil {
		s.code = <-s.done
		s.done = nil
	}
	return s.code
}

// waitReady polls url until it answers 200 or serve exits.
func (s *server) waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case code := <-s.done:
			s.done = nil
			s.code = code
			t.Fatalf("serve exited with %d before it was ready: %s", code, s.errOut)
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200; stderr: %s", url, s.errOut)
}

func get(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func serveEnv(t *testing.T, addr string, extra ...string) []string {
	return serveEnvDSN("sqlite://"+filepath.Join(t.TempDir(), "latch.db"), addr, extra...)
}

func serveEnvDSN(dsn, addr string, extra ...string) []string {
	return append([]string{
		"LATCH_DATABASE_DSN=" + dsn,
		"LATCH_MASTER_KEY=" + latchtest.MasterKey,
		"LATCH_API_KEY=" + latchtest.APIKey,
		"LATCH_HTTP_ADDR=" + addr,
		"LATCH_LOG_LEVEL=info",
	}, extra...)
}

// With http.admin_addr set, /metrics and every /api route exist only on the
// admin listener; without it, everything stays on the public one.
func TestAdminListenerSplit(t *testing.T) {
	adminPaths := []string{"/metrics", "/api/scopes", "/api/openapi.json", "/api/clients", "/api/audit", "/api/registration_tokens"}
	key := []string{"X-API-Key", latchtest.APIKey}

	t.Run("separate", func(t *testing.T) {
		pub, adm := freeAddr(t), freeAddr(t)
		s := startServe(t, serveEnv(t, pub, "LATCH_ADMIN_ADDR="+adm))
		s.waitReady(t, "http://"+pub+"/health/ready")
		for _, p := range adminPaths {
			if code, body := get(t, "http://"+pub+p, key...); code != http.StatusNotFound || !strings.Contains(body, `"not_found"`) {
				t.Errorf("public %s: %d %s, want 404 not_found", p, code, body)
			}
			if code, body := get(t, "http://"+adm+p, key...); code != http.StatusOK {
				t.Errorf("admin %s: %d %s, want 200", p, code, body)
			}
		}
		if code, _ := get(t, "http://"+adm+"/api/clients"); code != http.StatusUnauthorized {
			t.Errorf("admin /api/clients without a key: %d, want 401: the listener split does not replace the key", code)
		}
		for _, p := range []string{"/.well-known/openid-configuration", "/.well-known/jwks.json", "/health/alive"} {
			if code, _ := get(t, "http://"+pub+p); code != http.StatusOK {
				t.Errorf("public %s: %d, want 200", p, code)
			}
			if code, _ := get(t, "http://"+adm+p); code != http.StatusNotFound {
				t.Errorf("admin %s: %d, want 404: the admin listener serves only /metrics and /api", p, code)
			}
		}
		if code, body := get(t, "http://"+adm+"/metrics"); !strings.Contains(body, "latch_http_requests_total") {
			t.Errorf("admin /metrics: %d, no request counter", code)
		}
		if code := s.stop(); code != 0 {
			t.Errorf("serve exit %d: %s", code, s.errOut)
		}
	})

	t.Run("default", func(t *testing.T) {
		pub := freeAddr(t)
		s := startServe(t, serveEnv(t, pub))
		s.waitReady(t, "http://"+pub+"/health/ready")
		for _, p := range adminPaths {
			if code, body := get(t, "http://"+pub+p, key...); code != http.StatusOK {
				t.Errorf("public %s without admin_addr: %d %s, want 200", p, code, body)
			}
		}
	})
}
