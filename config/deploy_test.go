package config

import (
	"strings"
	"testing"
	"time"
)

// The variables Kubernetes injects for a Service named "latch" must not stop
// the start; every other unknown LATCH_* variable still must.
func TestKubernetesServiceVariablesIgnored(t *testing.T) {
	injected := []string{
		"LATCH_SERVICE_HOST=10.96.0.12",
		"LATCH_SERVICE_PORT=8080",
		"LATCH_SERVICE_PORT_HTTP=8080",
		"LATCH_SERVICE_PORT_ADMIN_METRICS=9090",
		"LATCH_PORT=tcp://10.96.0.12:8080",
		"LATCH_PORT_8080_TCP=tcp://10.96.0.12:8080",
		"LATCH_PORT_8080_TCP_PROTO=tcp",
		"LATCH_PORT_8080_TCP_PORT=8080",
		"LATCH_PORT_8080_TCP_ADDR=10.96.0.12",
		"LATCH_PORT_53_UDP_ADDR=10.96.0.12",
	}
	c := mustLoad(t, LoadOptions{Environ: append([]string{"LATCH_HTTP_ADDR=127.0.0.1:9999"}, injected...)})
	if c.HTTP.Addr != "127.0.0.1:9999" {
		t.Errorf("real variables must still apply next to injected ones: addr %q", c.HTTP.Addr)
	}

	for _, bad := range []string{
		"LATCH_SERVICE=1",
		"LATCH_SERVICE_HOSTNAME=x",
		"LATCH_SERVICES_PORT=1",
		"LATCH_PORTS=1",
		"LATCH_PORT_HTTP=1",
		"LATCH_PORT_8080_TCP_HOST=x",
		"LATCH_PORT_8080=1",
		"LATCH_HTTP_PORT=8080",
	} {
		ve := loadErr(t, LoadOptions{Environ: append([]string{bad}, injected...)})
		name, _, _ := strings.Cut(bad, "=")
		if len(ve.Problems) != 1 || !strings.Contains(ve.Error(), "unknown environment variable "+name) {
			t.Errorf("%s: want exactly one unknown-variable problem, got %v", name, ve)
		}
	}
}

func TestAdminListenerAndShutdownOptions(t *testing.T) {
	d := Default()
	if d.HTTP.AdminAddr != "" || d.HTTP.ShutdownTimeout != 15*time.Second {
		t.Errorf("defaults: admin_addr %q, shutdown_timeout %s", d.HTTP.AdminAddr, d.HTTP.ShutdownTimeout)
	}
	c := mustLoad(t, LoadOptions{Environ: []string{"LATCH_ADMIN_ADDR=127.0.0.1:9090", "LATCH_HTTP_SHUTDOWN_TIMEOUT=3s"}})
	if c.HTTP.AdminAddr != "127.0.0.1:9090" || c.HTTP.ShutdownTimeout != 3*time.Second {
		t.Errorf("env: admin_addr %q, shutdown_timeout %s", c.HTTP.AdminAddr, c.HTTP.ShutdownTimeout)
	}
	c = mustLoad(t, LoadOptions{File: writeYAML(t, "http:\n  admin_addr: 10.0.0.5:9090\n  shutdown_timeout: 0s\n")})
	if c.HTTP.AdminAddr != "10.0.0.5:9090" || c.HTTP.ShutdownTimeout != 0 {
		t.Errorf("file: admin_addr %q, shutdown_timeout %s", c.HTTP.AdminAddr, c.HTTP.ShutdownTimeout)
	}

	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"LATCH_ADMIN_ADDR=9090"}, `http.admin_addr: "9090" is not host:port`},
		{[]string{"LATCH_ADMIN_ADDR=127.0.0.1:99999"}, "invalid port"},
		{[]string{"LATCH_ADMIN_ADDR=127.0.0.1:8080"}, "give the admin listener its own port"},
		{[]string{"LATCH_HTTP_SHUTDOWN_TIMEOUT=-1s"}, "http.shutdown_timeout: must not be negative"},
		{[]string{"LATCH_HTTP_ADMIN_ADDR=127.0.0.1:9090"}, "unknown environment variable LATCH_HTTP_ADMIN_ADDR"},
	} {
		if ve := loadErr(t, LoadOptions{Environ: tc.env}); !strings.Contains(ve.Error(), tc.want) {
			t.Errorf("%v: error %q lacks %q", tc.env, ve, tc.want)
		}
	}
}
