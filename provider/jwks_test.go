package provider

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchhq/latch/outbound"
	"github.com/latchhq/latch/storage/conformance"
)

const (
	setA = `{"keys":[{"kty":"oct","kid":"a","k":"c2VjcmV0LWE"}]}`
	setB = `{"keys":[{"kty":"oct","kid":"b","k":"c2VjcmV0LWI"}]}`
)

// TestJWKSResolve: fosite's first ask is served from the parsed set for
// its max-age; the forced ask after an unknown kid reaches the network at
// most once a minute, and then sees a rotated set.
func TestJWKSResolve(t *testing.T) {
	var body atomic.Value
	body.Store(setA)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "public, max-age=180")
		_, _ = w.Write([]byte(body.Load().(string)))
	}))
	defer srv.Close()
	c := conformance.NewClockAt(time.Now())
	j := newJWKSFetcher(outbound.New(outbound.Options{AllowLoopback: true, Now: c.Now}), c.Now, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	kid := func(force bool) string {
		t.Helper()
		set, err := j.Resolve(ctx, srv.URL, force)
		if err != nil {
			t.Fatal(err)
		}
		return set.Keys[0].KeyID
	}
	step := func(name string, force bool, wantKid string, wantHits int64) {
		t.Helper()
		if got := kid(force); got != wantKid || hits.Load() != wantHits {
			t.Fatalf("%s: kid %s after %d fetches, want %s after %d", name, got, hits.Load(), wantKid, wantHits)
		}
	}
	step("first", false, "a", 1)
	step("cached", false, "a", 1)
	body.Store(setB)
	step("forced within the minute", true, "a", 1)
	c.Advance(time.Minute)
	step("unforced within max-age", false, "a", 1)
	step("forced after the minute", true, "b", 2)
	step("new set cached", false, "b", 2)
	c.Advance(3*time.Minute + time.Second)
	body.Store(setA)
	step("max-age over", false, "a", 3)
}

func TestJWKSUnusable(t *testing.T) {
	var log bytes.Buffer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"keys":"SECRET-NOT-A-SET"}`))
	}))
	defer srv.Close()
	j := newJWKSFetcher(outbound.New(outbound.Options{AllowLoopback: true}), time.Now, slog.New(slog.NewTextHandler(&log, nil)))
	for range 3 {
		_, err := j.Resolve(context.Background(), srv.URL, true)
		var rfc *fosite.RFC6749Error
		if !errors.As(err, &rfc) || rfc.ErrorField != "invalid_client" {
			t.Fatalf("got %v, want invalid_client", err)
		}
		if d := rfc.GetDescription(); strings.Contains(d, "127.0.0.1") || strings.Contains(d, "SECRET") {
			t.Fatalf("the description reveals the URL or body: %s", d)
		}
	}
	if n := strings.Count(log.String(), "no usable key set"); n != 1 {
		t.Fatalf("an unusable body was logged %d times, want once:\n%s", n, log.String())
	}
}

func TestCacheTTL(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"", jwksDefaultTTL},
		{"max-age=600", 10 * time.Minute},
		{"public, MAX-AGE=120", 2 * time.Minute},
		{"max-age=5", outbound.MinInterval},
		{"no-store", outbound.MinInterval},
		{"max-age=86400", jwksMaxTTL},
		{"max-age=nonsense", jwksDefaultTTL},
	} {
		if got := cacheTTL(http.Header{"Cache-Control": {tc.header}}); got != tc.want {
			t.Errorf("%q: %s, want %s", tc.header, got, tc.want)
		}
	}
}

// TestPeekAssertion: the client named to the jti cache is exactly fosite's
// "sub", never a case-folded "SUB" another client could be named by.
func TestPeekAssertion(t *testing.T) {
	enc := func(payload string) string {
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
	}
	for _, tc := range []struct {
		raw     string
		sub     string
		expUnix int64
	}{
		{enc(`{"sub":"a","exp":1700000000}`), "a", 1700000000},
		{enc(`{"sub":"a","SUB":"b","Sub":"c"}`), "a", 0},
		{enc(`{"SUB":"b"}`), "", 0},
		{enc(`{"sub":7,"exp":"soon"}`), "", 0},
		{enc(`{"sub":"a","exp":1e300}`), "a", 1 << 40},
		{"not-a-jwt", "", 0},
		{"a.!!!.c", "", 0},
	} {
		sub, exp := peekAssertion(tc.raw)
		if sub != tc.sub || (tc.expUnix == 0) != exp.IsZero() || (tc.expUnix != 0 && exp.Unix() != tc.expUnix) {
			t.Errorf("%s: got %q %v, want %q %d", tc.raw, sub, exp, tc.sub, tc.expUnix)
		}
	}
}
