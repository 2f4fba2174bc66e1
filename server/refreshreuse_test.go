package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage/conformance"
	"github.com/latchhq/latch/storage/pgtest"
)

// refreshRaw posts a refresh and returns the status and the raw body, so
// two answers can be compared byte for byte.
func refreshRaw(t *testing.T, env *latchtest.Env, c latchtest.Client, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", env.URL+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func refreshTokenOf(t *testing.T, body string) string {
	t.Helper()
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := jsonUnmarshal(body, &out); err != nil || out.RefreshToken == "" {
		t.Fatalf("no refresh token in %s", body)
	}
	return out.RefreshToken
}

// TestRefreshReuseInterval, on both databases: within
// LATCH_REFRESH_REUSE_INTERVAL a retry of the spent refresh token gets the
// same token response (no new branch, no revocation); once the successor
// was used, after the interval, or from another client, reuse revokes the
// family as before; a client's refresh_reuse_interval overrides the
// server's; concurrent presentations all get the one answer.
func TestRefreshReuseInterval(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) { testRefreshReuse(t, "") })
	t.Run("Postgres", func(t *testing.T) { testRefreshReuse(t, pgtest.DSN(t)) })
}

func testRefreshReuse(t *testing.T, dsn string) {
	clock := conformance.NewClockAt(time.Now())
	env := latchtest.Start(t, latchtest.Options{DSN: dsn, Now: clock.Now, Configure: func(c *config.Config) {
		c.Tokens.RefreshReuseInterval = 30 * time.Second
	}})
	c := env.WebClient("client_secret_basic")
	login := func(t *testing.T) string {
		r := newRP(t, env, c, oauth2.AuthStyleInHeader, "openid", "offline_access")
		tok, _ := r.login(t, latchtest.NewBrowser(t), map[string]any{"user": "u1"})
		return tok.RefreshToken
	}

	t.Run("retry gets the identical response", func(t *testing.T) {
		rt := login(t)
		s1, first := refreshRaw(t, env, c, rt)
		s2, again := refreshRaw(t, env, c, rt)
		if s1 != 200 || s2 != 200 || first != again {
			t.Fatalf("first %d %s\nretry %d %s", s1, first, s2, again)
		}
		if !strings.Contains(first, `"id_token"`) || !strings.Contains(first, `"access_token"`) {
			t.Fatalf("response %s", first)
		}
		// The successor is live: the family was not revoked.
		if s, body := refreshRaw(t, env, c, refreshTokenOf(t, first)); s != 200 {
			t.Fatalf("successor after a retry: %d %s", s, body)
		}
	})

	t.Run("after the successor was used, reuse revokes", func(t *testing.T) {
		rt := login(t)
		_, first := refreshRaw(t, env, c, rt)
		_, second := refreshRaw(t, env, c, refreshTokenOf(t, first))
		if s, body := refreshRaw(t, env, c, rt); s != 400 || !strings.Contains(body, "invalid_grant") {
			t.Fatalf("reuse after the successor was used: %d %s", s, body)
		}
		if s, _ := refreshRaw(t, env, c, refreshTokenOf(t, second)); s != 400 {
			t.Fatal("the family survived a reuse")
		}
	})

	t.Run("another client presenting it revokes", func(t *testing.T) {
		rt := login(t)
		_, first := refreshRaw(t, env, c, rt)
		other := env.WebClient("client_secret_basic")
		if s, body := refreshRaw(t, env, other, rt); s != 400 || !strings.Contains(body, "invalid_grant") {
			t.Fatalf("another client: %d %s", s, body)
		}
		if s, _ := refreshRaw(t, env, c, refreshTokenOf(t, first)); s != 400 {
			t.Fatal("the family survived a reuse by another client")
		}
	})

	t.Run("concurrent presentations get one answer", func(t *testing.T) {
		rt := login(t)
		const n = 6
		var wg sync.WaitGroup
		statuses, bodies := make([]int, n), make([]string, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i], bodies[i] = refreshRaw(t, env, c, rt)
			}()
		}
		wg.Wait()
		answers := map[string]bool{}
		for i := range n {
			if statuses[i] >= 500 {
				t.Fatalf("a racing refresh got %d %s", statuses[i], bodies[i])
			}
			if statuses[i] == 200 {
				answers[bodies[i]] = true
			}
		}
		if len(answers) != 1 {
			t.Fatalf("%d distinct successful answers (want exactly one family): %v %v", len(answers), statuses, bodies)
		}
		for body := range answers {
			if s, b := refreshRaw(t, env, c, refreshTokenOf(t, body)); s != 200 {
				t.Fatalf("the one family's successor: %d %s", s, b)
			}
		}
	})

	// Last: from here on Latch's clock runs ahead of fosite's.
	t.Run("after the interval, reuse revokes", func(t *testing.T) {
		rt := login(t)
		_, first := refreshRaw(t, env, c, rt)
		clock.Advance(31 * time.Second)
		if s, body := refreshRaw(t, env, c, rt); s != 400 || !strings.Contains(body, "invalid_grant") {
			t.Fatalf("reuse after the interval: %d %s", s, body)
		}
		if s, _ := refreshRaw(t, env, c, refreshTokenOf(t, first)); s != 400 {
			t.Fatal("the family survived a reuse after the interval")
		}
	})
}

// TestRefreshReusePerClient: with the server's interval at 0 (reuse
// revokes), a client registered with refresh_reuse_interval gets its grace;
// others do not. x/oauth2 drives the retries, as a Go client would.
func TestRefreshReusePerClient(t *testing.T) {
	ctx := context.Background()
	env := latchtest.Start(t, latchtest.Options{})
	graced := env.RegisterClient(map[string]any{"client_name": "graced", "redirect_uris": []string{"https://client.example/cb"},
		"grant_types": []string{"authorization_code", "refresh_token"}, "refresh_reuse_interval": 10})
	plain := env.WebClient("client_secret_basic")
	for _, tc := range []struct {
		c     latchtest.Client
		grace bool
	}{{graced, true}, {plain, false}} {
		r := newRP(t, env, tc.c, oauth2.AuthStyleInHeader, "openid", "offline_access")
		tok, _ := r.login(t, latchtest.NewBrowser(t), map[string]any{"user": "u1"})
		first, err := r.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatal(err)
		}
		retry, err := r.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if tc.grace {
			if err != nil || retry.AccessToken != first.AccessToken || retry.RefreshToken != first.RefreshToken ||
				retry.Extra("id_token") != first.Extra("id_token") {
				t.Fatalf("graced retry: %v, same tokens %v", err, err == nil && retry.AccessToken == first.AccessToken)
			}
			if _, err := r.provider.Verifier(&oidc.Config{ClientID: tc.c.ID}).Verify(ctx, retry.Extra("id_token").(string)); err != nil {
				t.Fatalf("retried id_token: %v", err)
			}
		} else if err == nil {
			t.Fatal("without an interval a retry must fail")
		}
		_, err = r.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: first.RefreshToken}).Token()
		if (err == nil) != tc.grace {
			t.Fatalf("successor usable %v, want %v", err == nil, tc.grace)
		}
	}
}

func jsonUnmarshal(s string, v any) error { return jsonDecode(strings.NewReader(s), v) }

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
