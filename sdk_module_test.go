package main

import (
	"crypto/sha256"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSDKModule runs the SDK module's own tests (sdk/ is a separate module,
// and `go test ./...` at the root does not descend into nested modules,
// even in workspace mode), and keeps its dependencies to the standard
// library and go-jose, so a host app importing it pulls nothing else.
func TestSDKModule(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a nested go test")
	}
	// Reading every SDK file makes them inputs of this test, so Go's test
	// cache reruns it whenever one changes.
	sum := sha256.New()
	err := filepath.WalkDir("sdk", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		sum.Write([]byte(p))
		sum.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	goBin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(goBin, args...)
		cmd.Dir = "sdk"
		cmd.Env = append(os.Environ(), "GOWORK=off")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s in sdk/: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	deps := run("list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./...")
	for _, d := range strings.Fields(deps) {
		if !strings.HasPrefix(d, "github.com/latchhq/latch/sdk") && !strings.HasPrefix(d, "github.com/go-jose/go-jose/v4") {
			t.Errorf("sdk depends on %s: only the standard library and go-jose/v4 are allowed", d)
		}
	}
	out := run("test", "-count=1", "./...")
	t.Logf("sdk module (%x):\n%s", sum.Sum(nil)[:6], out)
}
