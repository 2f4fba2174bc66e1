package server_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/server"
)

// The profiler answers on its own handler and never on the public one.
func TestPprofOnlyOnItsOwnListener(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	resp, err := http.Get(env.URL + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("public listener /debug/pprof/cmdline: %d, want 404", resp.StatusCode)
	}
	ps := httptest.NewServer(server.PprofHandler())
	defer ps.Close()
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap"} {
		resp, err := http.Get(ps.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("pprof %s: %d", p, resp.StatusCode)
		}
	}
}
