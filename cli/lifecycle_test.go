package cli_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/latchtest"
)

// A first start that cannot bind its port must neither show nor store the
// one-time admin key and demo secret; the next successful start shows them,
// and what it shows is what was stored.
func TestOneTimeSecretsOnlyAfterBind(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := taken.Addr().String()
	l := newLatch(t)
	env := append(l.environ, "LATCH_HTTP_ADDR="+addr)

	code, out, errOut := run(t, t.Context(), env, "serve")
	if code == 0 {
		t.Fatal("serve started on a taken port")
	}
	if out != "" {
		t.Errorf("a failed start printed %q: secrets shown before the port was bound are lost", out)
	}
	if want := "cannot listen on " + addr + " (public): the address is already in use by another process; stop it or set LATCH_HTTP_ADDR to a free address"; strings.TrimSpace(errOut) != "latch: "+want {
		t.Errorf("stderr %q, want the one line %q", errOut, want)
	}
	lenv := &latch{t: t, environ: env}
	if keys := lenv.ok("apikey", "list"); strings.Count(strings.TrimSpace(keys), "\n") != 0 {
		t.Errorf("a failed start stored an API key nobody saw:\n%s", keys)
	}
	if clients := lenv.ok("clients", "list"); strings.Count(strings.TrimSpace(clients), "\n") != 0 {
		t.Errorf("a failed start stored a demo client nobody saw:\n%s", clients)
	}

	taken.Close()
	s := startServe(t, env)
	s.waitReady(t, "http://"+addr+"/health/ready")
	shown := s.out.String()
	key := regexp.MustCompile(`(?m)^\s+(latch_\S+)$`).FindStringSubmatch(shown)
	client := regexp.MustCompile(`client_id:\s+(\S+)`).FindStringSubmatch(shown)
	if key == nil || client == nil {
		t.Fatalf("the first successful start did not show the admin key and demo client:\n%s", shown)
	}
	status, body := get(t, "http://"+addr+"/api/clients", "X-API-Key", key[1])
	if status != http.StatusOK || !strings.Contains(body, client[1]) {
		t.Errorf("the shown key and client are not the stored ones: %d %s", status, body)
	}
	// What config.example.yaml says of api.key: an empty key does not
	// disable the API (above), and the key goes in X-API-Key, not as a
	// bearer token.
	if status, _ := get(t, "http://"+addr+"/api/clients", "Authorization", "Bearer "+key[1]); status != http.StatusUnauthorized {
		t.Errorf("the admin key as a bearer token: %d, want 401", status)
	}
}

// SIGTERM (the context serve runs under ends) stops new connections but
// lets a request already in flight finish and commit before the database
// closes.
func TestGracefulShutdownFinishesInFlightRequest(t *testing.T) {
	addr := freeAddr(t)
	env := serveEnv(t, addr, "LATCH_HTTP_SHUTDOWN_TIMEOUT=20s")
	s := startServe(t, env)
	s.waitReady(t, "http://"+addr+"/health/ready")

	// Expect: 100-continue makes the server say when the handler starts
	// reading the body: from then on the request is in flight.
	body := `{"client_name":"In flight","redirect_uris":["https://app.example/cb"],"grant_types":["authorization_code"],"response_types":["code"]}`
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/clients HTTP/1.1\r\nHost: %s\r\nX-API-Key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		addr, latchtest.APIKey, len(body))
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("no 100 Continue: %q %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // blank line after the interim response
		t.Fatal(err)
	}

	stopped := make(chan int, 1)
	go func() { stopped <- s.stop() }()

	// New connections are refused once shutdown has begun...
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections after the signal")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case code := <-stopped:
		t.Fatalf("serve exited (%d) while a request was in flight", code)
	default:
	}

	// ...while the request in flight completes.
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("in-flight request got no response: %v", err)
	}
	defer resp.Body.Close()
	var created struct {
		ClientID string `json:"client_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || resp.StatusCode != http.StatusCreated || created.ClientID == "" {
		t.Fatalf("in-flight request: %d %v", resp.StatusCode, err)
	}
	if code := <-stopped; code != 0 {
		t.Errorf("serve exit %d: %s", code, s.errOut)
	}
	for _, want := range []string{"shutting down", "stopped"} {
		if !strings.Contains(s.errOut.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, s.errOut)
		}
	}
	// The write committed before the database closed.
	if out := (&latch{t: t, environ: env}).ok("clients", "show", created.ClientID); !strings.Contains(out, "In flight") {
		t.Errorf("client created by the in-flight request is missing: %s", out)
	}
}

// A request that never finishes holds shutdown only for
// http.shutdown_timeout; then serve closes it and exits.
func TestGracefulShutdownIsBounded(t *testing.T) {
	addr := freeAddr(t)
	s := startServe(t, serveEnv(t, addr, "LATCH_HTTP_SHUTDOWN_TIMEOUT=200ms"))
	s.waitReady(t, "http://"+addr+"/health/ready")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/clients HTTP/1.1\r\nHost: %s\r\nX-API-Key: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n{", addr, latchtest.APIKey)
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("no 100 Continue: %q %v", line, err)
	}
	if code := s.stop(); code != 0 {
		t.Errorf("serve exit %d: %s", code, s.errOut)
	}
	if !strings.Contains(s.errOut.String(), "cut off") {
		t.Errorf("no warning that a request was cut off:\n%s", s.errOut)
	}
}
