package server_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/logout"
	"github.com/latchhq/latch/storage/conformance"
)

// receiver is a relying party's back-channel logout endpoint on loopback.
type receiver struct {
	mu     sync.Mutex
	tokens []string
	got    chan string
	srv    *http.Server
	url    string
}

// newReceiver listens on addr ("127.0.0.1:0" for any port).
func newReceiver(t *testing.T, addr string) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{got: make(chan string, 16), url: "http://" + ln.Addr().String() + "/backchannel"}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		tok := req.PostFormValue("logout_token")
		r.mu.Lock()
		r.tokens = append(r.tokens, tok)
		r.mu.Unlock()
		r.got <- tok
		w.WriteHeader(http.StatusOK)
	})}
	go r.srv.Serve(ln)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

func (r *receiver) wait(t *testing.T) string {
	t.Helper()
	select {
	case tok := <-r.got:
		return tok
	case <-time.After(15 * time.Second):
		t.Fatal("no logout token arrived")
		return ""
	}
}

func withLoopbackOutbound(c *config.Config) {
	c.Outbound.AllowLoopback = true
	c.Logout.BackchannelPollInterval = 50 * time.Millisecond
}

// verifyLogoutToken checks a logout token as an RP library does: signature
// through the published JWKS, iss, aud, exp (go-oidc), then the claims
// Back-Channel Logout 1.0 §2.6 requires.
func verifyLogoutToken(t *testing.T, r *rp, raw string) map[string]any {
	t.Helper()
	v := r.provider.Verifier(&oidc.Config{ClientID: r.client.ID, SupportedSigningAlgs: []string{"ES256", "RS256"}})
	tok, err := v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("logout token does not verify against JWKS: %v", err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	header, _ := jwtParts(t, raw)
	if header["typ"] != "logout+jwt" {
		t.Errorf("typ %v, want logout+jwt", header["typ"])
	}
	events, _ := claims["events"].(map[string]any)
	if _, ok := events[logout.EventBackchannelLogout]; !ok {
		t.Errorf("events %v lack the back-channel logout member", claims["events"])
	}
	if _, ok := claims["nonce"]; ok {
		t.Error("a logout token must not carry a nonce")
	}
	for _, c := range []string{"iat", "exp", "jti", "sub", "sid"} {
		if claims[c] == nil || claims[c] == "" {
			t.Errorf("logout token lacks %s: %v", c, claims)
		}
	}
	return claims
}

func idTokenSID(t *testing.T, tok *oauth2.Token) string {
	t.Helper()
	_, claims := jwtParts(t, tok.Extra("id_token").(string))
	sid, _ := claims["sid"].(string)
	if sid == "" {
		t.Fatal("ID token has no sid")
	}
	return sid
}

func TestBackchannelLogoutOnRPLogout(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: withLoopbackOutbound, Background: true})
	rcv := newReceiver(t, "127.0.0.1:0")
	c := logoutClient(env, map[string]any{"backchannel_logout_uri": rcv.url, "backchannel_logout_session_required": true})
	quiet := logoutClient(env, nil) // no back-channel URI: nothing to send
	r := newRP(t, env, c, oauth2.AuthStyleInHeader, "openid")
	b := latchtest.NewBrowser(t)
	tok, _ := r.login(t, b, map[string]any{"user": "alice", "remember": true})
	newRP(t, env, quiet, oauth2.AuthStyleInHeader, "openid").login(t, b, map[string]any{"user": "alice"})
	sid := idTokenSID(t, tok)

	q := url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "post_logout_redirect_uri": {signedOutURI}, "state": {"x"}}
	if resp, _ := b.Get(env.URL + "/oauth2/logout?" + q.Encode()); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	claims := verifyLogoutToken(t, r, rcv.wait(t))
	if claims["sid"] != sid || claims["sub"] != "alice" || claims["iss"] != env.URL {
		t.Fatalf("logout token claims %v, want sid %s of the ID token", claims, sid)
	}
	wantLoginRequired(t, r, b)
	// The worker finishes the row and audits the outcome once the
	// receiver has answered, a moment after the token arrived.
	eventually(t, "the delivery is audited and leaves the queue", func() bool {
		status, out := env.API("GET", "/api/audit?event=logout.delivered&client_id="+c.ID, nil)
		evs, _ := out["events"].([]any)
		pending, err := env.App.Store.PendingLogoutDeliveries(context.Background())
		return status == http.StatusOK && len(evs) == 1 && err == nil && len(pending) == 0
	})
}

// eventually waits for cond, which background work makes true.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBackchannelLogoutOnHostAppSessionEnd(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: withLoopbackOutbound, Background: true})
	rcv := newReceiver(t, "127.0.0.1:0")
	c := logoutClient(env, map[string]any{"backchannel_logout_uri": rcv.url})
	r := newRP(t, env, c, oauth2.AuthStyleInHeader, "openid")
	b1, b2 := latchtest.NewBrowser(t), latchtest.NewBrowser(t)
	t1, _ := r.login(t, b1, map[string]any{"user": "alice", "remember": true})
	t2, _ := r.login(t, b2, map[string]any{"user": "alice", "remember": true})
	if status, _ := env.API("DELETE", "/api/users/alice/sessions", nil); status != http.StatusNoContent {
		t.Fatal(status)
	}
	got := map[any]bool{}
	for range 2 {
		got[verifyLogoutToken(t, r, rcv.wait(t))["sid"]] = true
	}
	if !got[idTokenSID(t, t1)] || !got[idTokenSID(t, t2)] {
		t.Fatalf("logout tokens name sids %v, want both sessions'", got)
	}
	wantLoginRequired(t, r, b1)
	wantLoginRequired(t, r, b2)
}

func TestBackchannelReceiverDownGetsTokenLater(t *testing.T) {
	clock := conformance.NewClockAt(time.Now())
	env := latchtest.Start(t, latchtest.Options{Now: clock.Now, Configure: func(c *config.Config) {
		withLoopbackOutbound(c)
		c.Logout.BackchannelRetryDelay = time.Minute
	}})
	// Take a free port for the receiver, then leave it closed: the RP is down.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := logoutClient(env, map[string]any{"backchannel_logout_uri": "http://" + addr + "/backchannel"})
	r := newRP(t, env, c, oauth2.AuthStyleInHeader, "openid")
	tok, _ := r.login(t, latchtest.NewBrowser(t), map[string]any{"user": "alice"})
	if status, _ := env.API("DELETE", "/api/users/alice/sessions", nil); status != http.StatusNoContent {
		t.Fatal(status)
	}
	ctx := context.Background()
	svc := env.App.Logout()
	if n, err := svc.DeliverDue(ctx); err != nil || n != 0 {
		t.Fatalf("delivery to a receiver that is down: %d, %v", n, err)
	}
	pending, _ := env.App.Store.PendingLogoutDeliveries(ctx)
	if len(pending) != 1 || pending[0].Attempts != 1 || pending[0].LastError == "" {
		t.Fatalf("after a failed delivery the token must stay queued: %+v", pending)
	}
	status, out := env.API("GET", "/api/audit?event=logout.failed", nil)
	if evs, _ := out["events"].([]any); status != http.StatusOK || len(evs) != 1 {
		t.Fatalf("audit of the failure: %d %v", status, out)
	}

	rcv := newReceiver(t, addr) // the RP comes back
	if n, _ := svc.DeliverDue(ctx); n != 0 {
		t.Fatal("retried before its backoff")
	}
	clock.Advance(time.Minute + time.Second)
	if n, err := svc.DeliverDue(ctx); err != nil || n != 1 {
		t.Fatalf("delivery after the receiver came back: %d, %v", n, err)
	}
	claims := verifyLogoutToken(t, r, rcv.wait(t))
	if claims["sid"] != idTokenSID(t, tok) || claims["jti"] != pending[0].ID {
		t.Fatalf("claims %v: want the ID token's sid and the queued jti", claims)
	}
}

func TestBackchannelGivesUpAfterMaxAttempts(t *testing.T) {
	clock := conformance.NewClockAt(time.Now())
	env := latchtest.Start(t, latchtest.Options{Now: clock.Now, Configure: func(c *config.Config) {
		withLoopbackOutbound(c)
		c.Logout.BackchannelMaxAttempts = 3
		c.Logout.BackchannelRetryDelay = time.Second
	}})
	var hits int
	var mu sync.Mutex
	failing := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go failing.Serve(ln)
	t.Cleanup(func() { failing.Close() })
	c := logoutClient(env, map[string]any{"backchannel_logout_uri": "http://" + ln.Addr().String() + "/bc"})
	newRP(t, env, c, oauth2.AuthStyleInHeader, "openid").login(t, latchtest.NewBrowser(t), map[string]any{"user": "alice"})
	env.API("DELETE", "/api/users/alice/sessions", nil)
	ctx := context.Background()
	for range 10 {
		env.App.Logout().DeliverDue(ctx)
		clock.Advance(10 * time.Second) // past every backoff so far (1s, 2s)
	}
	if pending, _ := env.App.Store.PendingLogoutDeliveries(ctx); len(pending) != 0 || hits != 3 {
		t.Fatalf("%d attempts, %d still queued: want exactly 3 attempts, then dropped", hits, len(pending))
	}
	_, out := env.API("GET", "/api/audit?event=logout.failed", nil)
	evs, _ := out["events"].([]any)
	if len(evs) != 3 || evs[0].(map[string]any)["details"].(map[string]any)["final"] != true {
		t.Fatalf("audit: want 3 failures, the last final: %v", out)
	}
}

func TestBackchannelURIValidation(t *testing.T) {
	strict := latchtest.Start(t, latchtest.Options{})
	dev := latchtest.Start(t, latchtest.Options{Configure: withLoopbackOutbound})
	base := map[string]any{"client_name": "x", "redirect_uris": []string{"https://client.example/cb"}}
	for _, tc := range []struct {
		env  *latchtest.Env
		uri  string
		want int
	}{
		{strict, "https://rp.example/bc?x=1", http.StatusCreated},
		{strict, "http://127.0.0.1:9/bc", http.StatusBadRequest},
		{dev, "http://127.0.0.1:9/bc", http.StatusCreated},
		{dev, "http://rp.example/bc", http.StatusBadRequest},
		{strict, "https://rp.example/bc#frag", http.StatusBadRequest},
		{strict, "/relative", http.StatusBadRequest},
		{strict, "https://user:pw@rp.example/bc", http.StatusBadRequest},
	} {
		body := map[string]any{"backchannel_logout_uri": tc.uri}
		for k, v := range base {
			body[k] = v
		}
		status, out := tc.env.API("POST", "/api/clients", body)
		if status != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.uri, status, out, tc.want)
		}
		if status == http.StatusBadRequest && out["error"] != "invalid_client_metadata" {
			t.Errorf("%s: error %v", tc.uri, out["error"])
		}
	}
	status, out := strict.API("POST", "/api/clients", map[string]any{"client_name": "x", "redirect_uris": []string{"https://client.example/cb"},
		"post_logout_redirect_uris": []string{"https://client.example/bye#x"}})
	if status != http.StatusBadRequest {
		t.Errorf("post_logout_redirect_uris with a fragment: %d %v", status, out)
	}
	// PATCH sets and shows the fields.
	c := strict.RegisterClient(map[string]any{"client_name": "x", "redirect_uris": []string{"https://client.example/cb"}})
	status, out = strict.API("PATCH", "/api/clients/"+c.ID, map[string]any{"post_logout_redirect_uris": []string{"https://client.example/bye"},
		"backchannel_logout_uri": "https://client.example/bc", "backchannel_logout_session_required": true})
	if status != http.StatusOK || out["backchannel_logout_uri"] != "https://client.example/bc" || out["backchannel_logout_session_required"] != true {
		t.Fatalf("patch: %d %v", status, out)
	}
	if _, out = strict.API("GET", "/api/clients/"+c.ID, nil); len(out["post_logout_redirect_uris"].([]any)) != 1 {
		t.Fatalf("read back: %v", out)
	}
}
