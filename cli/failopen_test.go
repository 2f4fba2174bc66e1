package cli_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// `latch serve` with a public issuer and no approval page refuses to start
// (the development page would approve anyone as anyone), and so does a
// guessable admin key; both are reported at once and nothing listens.
func TestServeRefusesFailOpenSettings(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	env := append(tempEnv(t), "LATCH_HTTP_ADDR="+addr, "LATCH_ISSUER=https://id.example.com", "LATCH_API_KEY=admin")
	// On a build that accepts these settings serve would run until stopped.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, out, errOut := run(t, ctx, env, "serve")
	if code == 0 {
		t.Fatalf("serve started: %q", out)
	}
	for _, want := range []string{"LATCH_APPROVAL_URL", "api.key", "at least 32 characters"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("error output lacks %q:\n%s", want, errOut)
		}
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("something listens although serve refused to start")
	}
}
