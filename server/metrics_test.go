package server_test

import (
	"crypto/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/latchhq/latch/latchtest"
)

// Anonymous requests with made-up methods and paths must not create time
// series: each new label value is memory held until the process exits (a
// review grew RSS by 17 MB with 150 requests carrying 60 KB methods).
func TestMetricsLabelsAreClosedSets(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	send := func(method, path string) {
		t.Helper()
		req, err := http.NewRequest(method, env.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	shapes := []func(){
		func() { send(randomToken(2000), "/"+randomToken(30)) },           // unknown method, unknown path
		func() { send("GET", "/"+randomToken(30)+"/"+randomToken(10)) },   // unknown path
		func() { send("GET", "/oauth2/token"+randomToken(8)) },            // near a real route
		func() { send(randomToken(500), "/oauth2/token") },                // unknown method, real route
		func() { send("DELETE", "/api/"+randomToken(20)) },                // unknown path in the API group
		func() { send(randomToken(100), "/.well-known/"+randomToken(9)) }, // unknown well-known document
	}
	for _, s := range shapes { // the series these shapes legitimately use
		s()
	}
	series(t, env) // and the scrape itself
	before := series(t, env)
	for i := range 300 {
		shapes[i%len(shapes)]()
	}
	after := series(t, env)
	if len(after) != len(before) {
		t.Errorf("random methods and paths added %d series:\n%s", len(after)-len(before), strings.Join(after, "\n"))
	}
	for _, l := range after {
		if len(l) > 200 {
			t.Errorf("label from the request: %.200s…", l)
		}
	}
	joined := strings.Join(after, "\n")
	for _, want := range []string{`route="unmatched"`, `method="other"`, `status="4xx"`, `route="/oauth2/token"`} {
		if !strings.Contains(joined, want) {
			t.Errorf("no series with %s:\n%s", want, joined)
		}
	}
}

// series returns the request-counter series /metrics exposes.
func series(t *testing.T, env *latchtest.Env) []string {
	t.Helper()
	_, body := latchtest.NewBrowser(t).Get(env.URL + "/metrics")
	var out []string
	for l := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(l, "latch_http_requests_total{") || strings.HasPrefix(l, "latch_http_request_duration_seconds_count{") {
			out = append(out, l[:strings.LastIndexByte(l, '}')+1])
		}
	}
	return out
}

func randomToken(n int) string {
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}
