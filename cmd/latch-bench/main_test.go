package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/latchtest"
)

func TestOnlyLoopbackTargets(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080", true},
		{"http://127.9.9.9:8080", true},
		{"http://[::1]:8080", true},
		{"http://localhost:8080", true},
		{"http://10.0.0.1:8080", false},
		{"http://example.com", false},
		{"http://0.0.0.0:8080", false},
		{"ftp://127.0.0.1", false},
		{"127.0.0.1:8080", false},
	} {
		if err := checkLoopback(tc.url); (err == nil) != tc.ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
	var stderr bytes.Buffer
	if err := run([]string{"-url", "http://192.0.2.1:80", "-client-id", "x", "-client-secret", "y"}, io.Discard, &stderr); err == nil {
		t.Error("run accepted a non-loopback target")
	}
}

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	got := percentiles(d)
	if got != (Latency{P50: 50, P95: 95, P99: 99, Max: 100}) {
		t.Errorf("percentiles = %+v", got)
	}
}

// Every scenario runs against a real server without errors, and the report
// folds repeated runs into one row of medians.
func TestScenariosAgainstLatch(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	c := env.CreateClient(clients.Metadata{ClientName: "bench", RedirectURIs: []string{benchRedirectURI},
		GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"}, Scope: benchScopes})
	results := filepath.Join(t.TempDir(), "results.jsonl")
	f, err := os.Create(results)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type sc struct {
		name    string
		idToken bool
	}
	for _, s := range []sc{{"flow", true}, {"refresh", true}, {"refresh", false}, {"client-credentials", true},
		{"introspect", true}, {"userinfo", true}, {"mixed", true}} {
		o := options{url: env.URL, scenario: s.name, idToken: s.idToken, concurrency: 2, duration: 5 * time.Second,
			maxOps: 12, apiKey: latchtest.APIKey, clientID: c.ID, secret: c.Secret, redirectURI: benchRedirectURI,
			serverPID: os.Getpid(), label: "sqlite"}
		if err := o.validate(); err != nil {
			t.Fatal(err)
		}
		res, err := bench(context.Background(), o, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if res.ErrorCount != 0 || res.Ops == 0 || res.Ops > 12 {
			t.Errorf("%s (id_token %v): %d ops, errors %v", s.name, s.idToken, res.Ops, res.Errors)
		}
		if res.ServerRSSMB <= 0 {
			t.Errorf("%s: no RSS sampled", s.name)
		}
		for range 2 {
			if err := json.NewEncoder(f).Encode(res); err != nil {
				t.Fatal(err)
			}
		}
	}
	var out bytes.Buffer
	if err := renderReport(results, &out); err != nil {
		t.Fatal(err)
	}
	// Seven scenario rows, then the four steps of the flow row.
	rows := strings.Count(out.String(), "\n| sqlite |")
	if rows != 7+4 || !strings.Contains(out.String(), "refresh (no ID token)") || !strings.Contains(out.String(), "| 2 |") ||
		!strings.Contains(out.String(), "| sqlite | 2 | 4 code exchange |") {
		t.Errorf("report has %d rows, want 7 with 2 runs each and 4 flow steps:\n%s", rows, out.String())
	}
}
