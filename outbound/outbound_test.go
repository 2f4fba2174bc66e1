package outbound_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchhq/latch/outbound"
	"github.com/latchhq/latch/storage/conformance"
)

// server is an https test server on loopback that counts its requests.
type server struct {
	*httptest.Server
	hits atomic.Int64
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.Certificate())
	return p
}

func jsonHandler(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("X-Internal", "not passed on")
		_, _ = w.Write([]byte(body))
	}
}

func wantKind(t *testing.T, err, kind error) *outbound.Error {
	t.Helper()
	var oe *outbound.Error
	if !errors.Is(err, kind) || !errors.As(err, &oe) {
		t.Fatalf("got error %v, want %v", err, kind)
	}
	return oe
}

func TestGetHTTPS(t *testing.T) {
	s := newServer(t, jsonHandler(`{"keys":[]}`))
	f := outbound.New(outbound.Options{AllowLoopback: true, RootCAs: s.roots()})
	r, err := f.Get(context.Background(), s.URL+"/jwks.json", 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Body) != `{"keys":[]}` || r.Header.Get("Cache-Control") != "max-age=300" || r.Header.Get("X-Internal") != "" {
		t.Fatalf("got %q %v", r.Body, r.Header)
	}
}

func TestTLSVerified(t *testing.T) {
	s := newServer(t, jsonHandler(`{}`))
	// No RootCAs: the system pool does not know the test CA.
	f := outbound.New(outbound.Options{AllowLoopback: true})
	_, err := f.Get(context.Background(), s.URL, 0)
	wantKind(t, err, outbound.ErrUnreachable)
}

func TestRedirectRefused(t *testing.T) {
	target := newServer(t, jsonHandler(`{"keys":[]}`))
	for _, status := range []int{301, 302, 303, 307, 308} {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL, status)
		})
		f := outbound.New(outbound.Options{AllowLoopback: true, RootCAs: s.roots()})
		_, err := f.Get(context.Background(), s.URL, 0)
		if oe := wantKind(t, err, outbound.ErrRedirect); oe.Status != status {
			t.Errorf("status %d recorded as %d", status, oe.Status)
		}
	}
	if n := target.hits.Load(); n != 0 {
		t.Fatalf("redirect target fetched %d times", n)
	}
}

func TestPlainHTTPRefused(t *testing.T) {
	var hits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{}`))
	}))
	defer plain.Close()
	strict := outbound.New(outbound.Options{})
	_, err := strict.Get(context.Background(), plain.URL, 0)
	wantKind(t, err, outbound.ErrForbiddenURL)
	if hits.Load() != 0 {
		t.Fatal("plain http fetched without the loopback allowance")
	}

	// The allowance opens plain http to loopback only.
	dev := outbound.New(outbound.Options{AllowLoopback: true})
	if _, err := dev.Get(context.Background(), plain.URL, 0); err != nil || hits.Load() != 1 {
		t.Fatalf("plain http on loopback with the allowance: %v, %d hits", err, hits.Load())
	}
	_, err = dev.Get(context.Background(), "http://93.184.215.14/", 0)
	wantKind(t, err, outbound.ErrForbiddenAddress)
}

func TestURLsRefusedBeforeTheNetwork(t *testing.T) {
	f := outbound.New(outbound.Options{AllowLoopback: true})
	for _, u := range []string{"ftp://example.com/x", "file:///etc/passwd", "https://user:pw@example.com/", "https:///nohost", "mailto:a@example.com", "://bad", ""} {
		_, err := f.Get(context.Background(), u, 0)
		wantKind(t, err, outbound.ErrForbiddenURL)
	}
}

func TestLoopbackRefusedUnlessAllowed(t *testing.T) {
	s := newServer(t, jsonHandler(`{}`))
	f := outbound.New(outbound.Options{RootCAs: s.roots()})
	for _, u := range []string{s.URL, strings.Replace(s.URL, "127.0.0.1", "localhost", 1)} {
		_, err := f.Get(context.Background(), u, 0)
		wantKind(t, err, outbound.ErrForbiddenAddress)
	}
	if n := s.hits.Load(); n != 0 {
		t.Fatalf("loopback server reached %d times", n)
	}
}

// TestPrivateAddressesRefusedOnTheSocket: the dialer's check runs before
// connect, so an address in a refused range is never contacted.
func TestPrivateAddressesRefusedOnTheSocket(t *testing.T) {
	f := outbound.New(outbound.Options{AllowLoopback: true})
	for _, u := range []string{
		"https://169.254.169.254/latest/meta-data/",
		"https://10.0.0.1/",
		"https://[fd00:ec2::254]/",
		"https://[::ffff:169.254.169.254]/",
		"https://[::ffff:10.1.2.3]:8443/",
		"https://0.0.0.0/",
	} {
		_, err := f.Get(context.Background(), u, 0)
		wantKind(t, err, outbound.ErrForbiddenAddress)
	}
}

func TestCheckAddress(t *testing.T) {
	for _, tc := range []struct {
		addr          string
		public, local bool // allowed without / with the loopback allowance
	}{
		{"93.184.215.14", true, true},
		{"1.1.1.1", true, true},
		{"2606:4700:4700::1111", true, true},
		{"::ffff:93.184.215.14", true, true},
		{"127.0.0.1", false, true},
		{"127.5.6.7", false, true},
		{"::1", false, true},
		{"::ffff:127.0.0.1", false, true},
		{"0.0.0.0", false, false},
		{"::", false, false},
		{"10.0.0.1", false, false},
		{"172.16.5.4", false, false},
		{"172.31.255.255", false, false},
		{"192.168.1.1", false, false},
		{"100.64.0.1", false, false},
		{"100.127.255.254", false, false},
		{"169.254.169.254", false, false},
		{"169.254.0.1", false, false},
		{"::ffff:169.254.169.254", false, false},
		{"::ffff:10.0.0.1", false, false},
		{"::ffff:192.168.0.1", false, false},
		{"fd00:ec2::254", false, false},
		{"fc00::1", false, false},
		{"fe80::1", false, false},
		{"fe80::1%eth0", false, false},
		{"224.0.0.1", false, false},
		{"239.255.255.250", false, false},
		{"ff02::1", false, false},
		{"255.255.255.255", false, false},
		{"240.0.0.1", false, false},
		{"192.0.2.1", false, false},
		{"198.18.0.1", false, false},
		{"2001:db8::1", false, false},
		{"64:ff9b::a9fe:a9fe", false, false}, // NAT64 of 169.254.169.254
		{"2002:a9fe:a9fe::1", false, false},  // 6to4 of 169.254.169.254
		{"::a9fe:a9fe", false, false},        // IPv4-compatible 169.254.169.254
		{"::ffff:0:a9fe:a9fe", false, false}, // SIIT 169.254.169.254
	} {
		ip := netip.MustParseAddr(tc.addr)
		if got := outbound.CheckAddress(ip, false) == nil; got != tc.public {
			t.Errorf("%s allowed=%v, want %v", tc.addr, got, tc.public)
		}
		if got := outbound.CheckAddress(ip, true) == nil; got != tc.local {
			t.Errorf("%s with loopback allowed=%v, want %v", tc.addr, got, tc.local)
		}
	}
	if outbound.CheckAddress(netip.Addr{}, true) == nil {
		t.Error("the zero address is allowed")
	}
}

// TestBodyLimit: a body past the limit is refused after reading at most
// limit+1 bytes of it, whether or not its length was declared.
func TestBodyLimit(t *testing.T) {
	const huge = 256 << 20
	var written atomic.Int64
	done := make(chan struct{})
	endless := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		defer close(done)
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for written.Load() < huge {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	f := outbound.New(outbound.Options{AllowLoopback: true, RootCAs: endless.roots()})
	_, err := f.Get(context.Background(), endless.URL, 0)
	wantKind(t, err, outbound.ErrTooLarge)
	<-done
	if n := written.Load(); n >= huge {
		t.Fatalf("the whole %d-byte body was sent", n)
	}

	declared := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "70000")
		w.WriteHeader(200)
	})
	f = outbound.New(outbound.Options{AllowLoopback: true, RootCAs: declared.roots()})
	_, err = f.Get(context.Background(), declared.URL, 0)
	wantKind(t, err, outbound.ErrTooLarge)

	// Callers may ask for less; the default caps what they may ask for.
	sixK := newServer(t, jsonHandler(strings.Repeat("a", 6<<10)))
	f = outbound.New(outbound.Options{AllowLoopback: true, RootCAs: sixK.roots()})
	_, err = f.Get(context.Background(), sixK.URL, 5<<10)
	wantKind(t, err, outbound.ErrTooLarge)
	exact := newServer(t, jsonHandler(strings.Repeat("a", outbound.DefaultLimit)))
	f = outbound.New(outbound.Options{AllowLoopback: true, RootCAs: exact.roots()})
	if r, err := f.Get(context.Background(), exact.URL, 1<<30); err != nil || len(r.Body) != outbound.DefaultLimit {
		t.Fatalf("a body of exactly the default limit: %v", err)
	}
	over := newServer(t, jsonHandler(strings.Repeat("a", outbound.DefaultLimit+1)))
	f = outbound.New(outbound.Options{AllowLoopback: true, RootCAs: over.roots()})
	_, err = f.Get(context.Background(), over.URL, 1<<30)
	wantKind(t, err, outbound.ErrTooLarge)
}

func TestSlowServerTimesOut(t *testing.T) {
	for name, h := range map[string]func(http.ResponseWriter, <-chan struct{}){
		"headers": func(_ http.ResponseWriter, release <-chan struct{}) { <-release },
		"body": func(w http.ResponseWriter, release <-chan struct{}) {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			_, _ = w.Write([]byte("{"))
			w.(http.Flusher).Flush()
			<-release
		},
	} {
		t.Run(name, func(t *testing.T) {
			release := make(chan struct{})
			s := newServer(t, func(w http.ResponseWriter, _ *http.Request) { h(w, release) })
			t.Cleanup(func() { close(release) }) // runs before the server's Close
			f := outbound.New(outbound.Options{AllowLoopback: true, RootCAs: s.roots(), Timeout: 100 * time.Millisecond})
			_, err := f.Get(context.Background(), s.URL, 0)
			wantKind(t, err, outbound.ErrTimeout)
		})
	}
}

// TestOncePerMinute: within a minute of a fetch every Get of that URL gets
// its result, errors included, and concurrent Gets share one fetch.
func TestOncePerMinute(t *testing.T) {
	var status atomic.Int64
	status.Store(200)
	s := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write([]byte(`{"keys":[]}`))
	})
	c := conformance.NewClockAt(time.Now())
	f := outbound.New(outbound.Options{AllowLoopback: true, RootCAs: s.roots(), Now: c.Now})
	get := func() error { _, err := f.Get(context.Background(), s.URL+"/jwks", 0); return err }

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := get(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("20 concurrent Gets made %d fetches", n)
	}
	status.Store(500)
	c.Advance(59 * time.Second)
	if err := get(); err != nil || s.hits.Load() != 1 {
		t.Fatalf("within the minute: %v, %d fetches", err, s.hits.Load())
	}
	c.Advance(time.Second)
	wantKind(t, get(), outbound.ErrStatus)
	if n := s.hits.Load(); n != 2 {
		t.Fatalf("after a minute: %d fetches, want 2", n)
	}
	// The error is remembered as well.
	status.Store(200)
	for range 5 {
		wantKind(t, get(), outbound.ErrStatus)
	}
	if n := s.hits.Load(); n != 2 {
		t.Fatalf("a failed fetch was retried within the minute: %d fetches", n)
	}
	// Another URL on the same host is another entry.
	if _, err := f.Get(context.Background(), s.URL+"/other", 0); err != nil || s.hits.Load() != 3 {
		t.Fatalf("another URL: %v, %d fetches", err, s.hits.Load())
	}
}

// TestCallerHangingUpDoesNotPoison: the fetch a cancelled caller started
// completes for the next caller instead of caching the cancellation.
func TestCallerHangingUpDoesNotPoison(t *testing.T) {
	release := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		<-release
		_, _ = w.Write([]byte(`{}`))
	})
	f := outbound.New(outbound.Options{AllowLoopback: true, RootCAs: s.roots()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.Get(ctx, s.URL, 0)
	wantKind(t, err, outbound.ErrTimeout)
	close(release)
	if _, err := f.Get(context.Background(), s.URL, 0); err != nil || s.hits.Load() != 1 {
		t.Fatalf("after a caller hung up: %v, %d fetches", err, s.hits.Load())
	}
}

// TestErrorsRevealNothing: neither the response body, the status, the URL
// nor network detail appears in an error's text; the log has one line per
// failed fetch, with the status but never the body.
func TestErrorsRevealNothing(t *testing.T) {
	const secret = "SECRET-UPSTREAM-BODY"
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			w.Header().Set("Location", "http://10.0.0.1/"+secret)
			w.WriteHeader(302)
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat(secret, 10000)))
		default:
			w.WriteHeader(418)
		}
		_, _ = w.Write([]byte(secret))
	})
	var log bytes.Buffer
	f := outbound.New(outbound.Options{AllowLoopback: true, RootCAs: s.roots(), Log: slog.New(slog.NewTextHandler(&log, nil))})
	strict := outbound.New(outbound.Options{RootCAs: s.roots()})
	host := strings.TrimPrefix(s.URL, "https://")
	for _, tc := range []struct {
		f    *outbound.Fetcher
		path string
	}{{f, "/status"}, {f, "/redirect"}, {f, "/big"}, {strict, "/loopback"}, {f, "/status?again"}} {
		_, err := tc.f.Get(context.Background(), s.URL+tc.path, 0)
		if err == nil {
			t.Fatalf("%s: no error", tc.path)
		}
		for _, leak := range []string{secret, "418", "302", host, "127.0.0.1", tc.path, "goroutine", ".go:"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%s: error %q reveals %q", tc.path, err, leak)
			}
		}
	}
	if strings.Contains(log.String(), secret) {
		t.Errorf("the log holds the upstream body:\n%s", log.String())
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	var failures int
	for _, l := range lines {
		if strings.Contains(l, "outbound fetch failed") {
			failures++
		}
	}
	if failures != 4 || !strings.Contains(log.String(), "status=418") {
		t.Errorf("want one warning per failed fetch (4), with the status:\n%s", log.String())
	}
}

// TestLoopbackAllowanceIsLogged: the development switch announces itself.
func TestLoopbackAllowanceIsLogged(t *testing.T) {
	for _, allow := range []bool{false, true} {
		var log bytes.Buffer
		outbound.New(outbound.Options{AllowLoopback: allow, Log: slog.New(slog.NewTextHandler(&log, nil))})
		if got := strings.Contains(log.String(), "level=WARN") && strings.Contains(log.String(), "allow_loopback"); got != allow {
			t.Errorf("allow_loopback=%v: warning logged=%v\n%s", allow, got, log.String())
		}
	}
}

func TestPostForm(t *testing.T) {
	var got atomic.Value
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got.Store(r.PostFormValue("logout_token"))
		w.WriteHeader(http.StatusOK)
	})
	f := outbound.New(outbound.Options{AllowLoopback: true, RootCAs: s.roots()})
	for i := range 2 {
		// Every call posts: no sharing of results between calls.
		if err := f.PostForm(context.Background(), s.URL+"/bc", url.Values{"logout_token": {"t"}}); err != nil {
			t.Fatal(err)
		}
		if got.Load() != "t" || s.hits.Load() != int64(i+1) {
			t.Fatalf("post %d: form %v, %d hits", i, got.Load(), s.hits.Load())
		}
	}
}

func TestPostFormRules(t *testing.T) {
	target := newServer(t, func(w http.ResponseWriter, _ *http.Request) {})
	redirect := newServer(t, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, target.URL, 307) })
	failing := newServer(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	roots := redirect.roots()
	roots.AddCert(failing.Certificate())
	f := outbound.New(outbound.Options{AllowLoopback: true, RootCAs: roots})
	wantKind(t, f.PostForm(context.Background(), redirect.URL, nil), outbound.ErrRedirect)
	if target.hits.Load() != 0 {
		t.Fatal("redirect followed")
	}
	if oe := wantKind(t, f.PostForm(context.Background(), failing.URL, nil), outbound.ErrStatus); oe.Status != 503 {
		t.Fatalf("status %d", oe.Status)
	}
	wantKind(t, f.PostForm(context.Background(), "http://93.184.215.14/", nil), outbound.ErrForbiddenAddress)

	strict := outbound.New(outbound.Options{RootCAs: roots})
	wantKind(t, strict.PostForm(context.Background(), failing.URL, nil), outbound.ErrForbiddenAddress)
	wantKind(t, strict.PostForm(context.Background(), "http://127.0.0.1:1/", nil), outbound.ErrForbiddenURL)
	if failing.hits.Load() != 1 {
		t.Fatalf("loopback reached without the allowance: %d hits", failing.hits.Load())
	}
}
