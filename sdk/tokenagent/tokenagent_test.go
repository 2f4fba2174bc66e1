package tokenagent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latchhq/latch/sdk/dpop"
)

// tokenServer is a scripted token endpoint for the agent's own rules;
// the whole-flow tests against a real Latch live in e2e/sdk.
type tokenServer struct {
	mu       sync.Mutex
	forms    []map[string]string
	headers  []http.Header
	response func(n int, form map[string]string) (int, map[string]any, http.Header)
}

func (s *tokenServer) start(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f := map[string]string{}
		for k := range r.PostForm {
			f[k] = r.PostForm.Get(k)
		}
		s.mu.Lock()
		s.forms = append(s.forms, f)
		s.headers = append(s.headers, r.Header.Clone())
		n := len(s.forms)
		s.mu.Unlock()
		status, body, hdr := s.response(n, f)
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/token"
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestNoExpiresIn(t *testing.T) {
	s := &tokenServer{response: func(n int, f map[string]string) (int, map[string]any, http.Header) {
		return 200, map[string]any{"access_token": "at" + string(rune('0'+n)), "token_type": "Bearer"}, nil
	}}
	c := &clock{t: time.Now()}
	a, err := New(context.Background(), Config{TokenURL: s.start(t), ClientID: "c", ClientSecret: "s", ClientCredentials: true, DefaultLifetime: time.Minute, Now: c.now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t1, err := a.Token()
	if err != nil || !t1.Expiry.IsZero() {
		t.Fatalf("%v %+v", err, t1)
	}
	c.advance(50 * time.Second)
	if t2, _ := a.Token(); t2.AccessToken != t1.AccessToken || a.Requests() != 1 {
		t.Fatalf("refreshed before the default lifetime: %d", a.Requests())
	}
	c.advance(11 * time.Second)
	if t3, _ := a.Token(); t3.AccessToken == t1.AccessToken || a.Requests() != 2 {
		t.Fatalf("not refreshed after the default lifetime: %d", a.Requests())
	}
	if s.forms[0]["grant_type"] != "client_credentials" {
		t.Fatal(s.forms[0])
	}
}

func TestRefreshEveryAndBefore(t *testing.T) {
	s := &tokenServer{response: func(n int, f map[string]string) (int, map[string]any, http.Header) {
		return 200, map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": "3600", "refresh_token": "rt"}, nil
	}}
	c := &clock{t: time.Now()}
	a, _ := New(context.Background(), Config{TokenURL: s.start(t), ClientID: "c", RefreshEvery: 10 * time.Minute, RefreshBefore: time.Minute, Now: c.now},
		&Token{AccessToken: "x", RefreshToken: "rt0", Expiry: c.now().Add(time.Hour)})
	c.advance(9 * time.Minute)
	_, _ = a.Token()
	if a.Requests() != 0 {
		t.Fatal("refreshed early")
	}
	c.advance(2 * time.Minute)
	tok, err := a.Token()
	if err != nil || a.Requests() != 1 || s.forms[0]["refresh_token"] != "rt0" || s.forms[0]["client_id"] != "c" {
		t.Fatalf("RefreshEvery: %v %d %v", err, a.Requests(), s.forms)
	}
	if got := tok.Expiry.Sub(c.now()); got != time.Hour {
		t.Fatalf("expires_in as a string: expiry in %v", got)
	}
	// Without RefreshEvery, RefreshBefore decides.
	b, _ := New(context.Background(), Config{TokenURL: a.cfg.TokenURL, ClientID: "c", RefreshBefore: time.Minute, Now: c.now},
		&Token{AccessToken: "x", RefreshToken: "rt1", Expiry: c.now().Add(2 * time.Minute)})
	_, _ = b.Token()
	c.advance(61 * time.Second)
	_, _ = b.Token()
	if b.Requests() != 1 {
		t.Fatalf("RefreshBefore: %d", b.Requests())
	}
}

// A refresh token is sent once: after a failed refresh (a 5xx, a timeout:
// the server may have spent it) the agent never sends it again, and the
// store never holds it once it was sent.
func TestSpentRefreshTokenNeverResent(t *testing.T) {
	s := &tokenServer{response: func(n int, f map[string]string) (int, map[string]any, http.Header) {
		return 503, map[string]any{"error": "temporarily_unavailable"}, nil
	}}
	c := &clock{t: time.Now()}
	path := filepath.Join(t.TempDir(), "tok.json")
	a, _ := New(context.Background(), Config{TokenURL: s.start(t), ClientID: "c", ClientSecret: "s", Store: FileStore{Path: path}, Now: c.now},
		&Token{AccessToken: "x", RefreshToken: "rt0", Expiry: c.now().Add(-time.Second)})
	_, err := a.Token()
	if !errors.Is(err, ErrRefresh) {
		t.Fatalf("first: %v", err)
	}
	stored, _ := FileStore{Path: path}.Load(context.Background())
	if stored.RefreshToken != "" {
		t.Fatal("the store still holds a sent refresh token")
	}
	for range 3 {
		if _, err := a.Token(); !errors.Is(err, ErrNoToken) {
			t.Fatalf("later: %v", err)
		}
	}
	if len(s.forms) != 1 {
		t.Fatalf("%d token requests, want 1", len(s.forms))
	}
}

// A failed refresh while the access token has not expired yet keeps
// serving it.
func TestFailedRefreshKeepsValidToken(t *testing.T) {
	s := &tokenServer{response: func(n int, f map[string]string) (int, map[string]any, http.Header) {
		return 400, map[string]any{"error": "invalid_grant"}, nil
	}}
	c := &clock{t: time.Now()}
	a, _ := New(context.Background(), Config{TokenURL: s.start(t), ClientID: "c", RefreshBefore: time.Minute, Now: c.now},
		&Token{AccessToken: "still-good", RefreshToken: "rt0", Expiry: c.now().Add(30 * time.Second)})
	tok, err := a.Token()
	if err != nil || tok.AccessToken != "still-good" {
		t.Fatalf("%v %+v", err, tok)
	}
	c.advance(31 * time.Second)
	if _, err := a.Token(); !errors.Is(err, ErrNoToken) {
		t.Fatal(err)
	}
}

func TestDPoPNonceRetry(t *testing.T) {
	key, _ := dpop.NewKey()
	s := &tokenServer{}
	s.response = func(n int, f map[string]string) (int, map[string]any, http.Header) {
		p, err := dpop.Parse(s.headers[n-1].Get("DPoP"))
		if err != nil || p.JKT != key.Thumbprint() {
			return 400, map[string]any{"error": "invalid_dpop_proof"}, nil
		}
		if p.Nonce != "n1" {
			return 400, map[string]any{"error": "use_dpop_nonce"}, http.Header{"Dpop-Nonce": {"n1"}}
		}
		return 200, map[string]any{"access_token": "at", "token_type": "DPoP", "expires_in": 60}, nil
	}
	a, _ := New(context.Background(), Config{TokenURL: s.start(t), ClientID: "c", ClientSecret: "s", ClientCredentials: true, DPoP: key}, nil)
	tok, err := a.Token()
	if err != nil || tok.Type() != "DPoP" || len(s.forms) != 2 {
		t.Fatalf("%v %+v %d", err, tok, len(s.forms))
	}
}

func TestFileStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	st := FileStore{Path: path}
	if tok, err := st.Load(context.Background()); tok != nil || err != nil {
		t.Fatalf("empty: %v %v", tok, err)
	}
	in := &Token{AccessToken: "a", RefreshToken: "r", TokenType: "Bearer", Expiry: time.Unix(2000000000, 0).UTC()}
	if err := st.Save(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	out, err := st.Load(context.Background())
	if err != nil || *out != *in {
		t.Fatalf("%+v %v", out, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

// Run refreshes as the token falls due, with nobody asking.
func TestRunRefreshesInBackground(t *testing.T) {
	s := &tokenServer{response: func(n int, f map[string]string) (int, map[string]any, http.Header) {
		return 200, map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 2}, nil
	}}
	a, _ := New(context.Background(), Config{TokenURL: s.start(t), ClientID: "c", ClientSecret: "s", ClientCredentials: true, RefreshBefore: time.Second}, nil)
	if _, err := a.Token(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.Run(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for a.Requests() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no background refresh: %d requests", a.Requests())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
