package cli_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Each failure an operator is likely to meet first answers with one line
// that says what happened and what to do, and leaves nothing behind that
// makes the next attempt worse.
func TestFailureMessages(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (environ []string, args []string)
		want  []string // all in the one line
	}{
		{
			name: "latch.key lost from a database that holds sealed keys",
			setup: func(t *testing.T) ([]string, []string) {
				dir := t.TempDir()
				env := []string{"LATCH_DATABASE_DSN=sqlite://" + filepath.Join(dir, "latch.db"), "LATCH_LOG_LEVEL=error"}
				if code, _, errOut := run(t, t.Context(), env, "migrate"); code != 0 {
					t.Fatalf("first migrate: %s", errOut)
				}
				if err := os.Remove(filepath.Join(dir, "latch.key")); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if _, err := os.Stat(filepath.Join(dir, "latch.key")); err == nil {
						t.Error("a new latch.key was written; it can never open the sealed keys")
					}
				})
				return env, []string{"migrate"}
			},
			want: []string{"latch.key is missing, but the database already holds keys sealed with the master key it held", "restore that file from a backup", "LATCH_MASTER_KEY"},
		},
		{
			name: "SQLite directory missing",
			setup: func(t *testing.T) ([]string, []string) {
				return []string{"LATCH_DATABASE_DSN=sqlite://" + filepath.Join(t.TempDir(), "no", "such", "latch.db"), "LATCH_MASTER_KEY=" + masterKey}, []string{"migrate"}
			},
			want: []string{"directory", "does not exist; create it (mkdir -p", "or point LATCH_DATABASE_DSN at an existing directory"},
		},
		{
			name: "SQLite path is a directory",
			setup: func(t *testing.T) ([]string, []string) {
				return []string{"LATCH_DATABASE_DSN=sqlite://" + t.TempDir(), "LATCH_MASTER_KEY=" + masterKey}, []string{"migrate"}
			},
			want: []string{"is a directory; point LATCH_DATABASE_DSN at a file"},
		},
		{
			name: "public port taken",
			setup: func(t *testing.T) ([]string, []string) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				return append(tempEnv(t), "LATCH_LOG_LEVEL=error", "LATCH_HTTP_ADDR="+ln.Addr().String()), []string{"serve"}
			},
			want: []string{"(public): the address is already in use by another process; stop it or set LATCH_HTTP_ADDR to a free address"},
		},
		{
			name: "admin port taken",
			setup: func(t *testing.T) ([]string, []string) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				env := append(tempEnv(t), "LATCH_LOG_LEVEL=error", "LATCH_HTTP_ADDR="+freeAddr(t), "LATCH_ADMIN_ADDR="+ln.Addr().String())
				return env, []string{"serve"}
			},
			want: []string{"(admin): the address is already in use by another process; stop it or set LATCH_ADMIN_ADDR to a free address"},
		},
		{
			name: "Kubernetes variables next to a typo",
			setup: func(t *testing.T) ([]string, []string) {
				return append(tempEnv(t), "LATCH_SERVICE_HOST=10.0.0.1", "LATCH_PORT_8080_TCP_ADDR=10.0.0.1", "LATCH_HTTP_ADR=x"), []string{"migrate"}
			},
			want: []string{"unknown environment variable LATCH_HTTP_ADR; did you mean LATCH_HTTP_ADDR?"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, args := tc.setup(t)
			// Bounded, so a start that wrongly succeeds fails the test
			// instead of serving until the test binary times out.
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			code, out, errOut := run(t, ctx, env, args...)
			line := strings.TrimSpace(errOut)
			if code == 0 {
				t.Fatalf("exit 0; stdout %q", out)
			}
			if strings.Contains(line, "\n") && !strings.HasPrefix(line, "latch: invalid configuration") {
				t.Errorf("more than one line:\n%s", errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("message %q lacks %q", line, w)
				}
			}
			for _, bad := range []string{"out of memory", "panic", "goroutine"} {
				if strings.Contains(line, bad) {
					t.Errorf("message %q says %q", line, bad)
				}
			}
		})
	}
}
