package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchhq/latch/latchtest"
)

// Many browsers signing in at once on the embedded database: every flow
// completes, none sees "database is locked" as a 5xx.
func TestConcurrentFlowsOnSQLite(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	web := env.WebClient("client_secret_post")
	t.Run("flows", func(t *testing.T) {
		for i := range 24 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				e := env.With(t)
				r := newRP(t, e, web, oauth2.AuthStyleInParams, "openid", "offline_access")
				tok, _ := r.login(t, latchtest.NewBrowser(t), map[string]any{"user": fmt.Sprintf("user-%d", i)})
				if _, err := r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
					t.Errorf("refresh: %v", err)
				}
			})
		}
	})
}

// Logs are for operators; they must never carry a credential.
func TestLogsCarryNoSecrets(t *testing.T) {
	var buf latchtest.SyncBuffer
	env := latchtest.Start(t, latchtest.Options{Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	web := env.WebClient("client_secret_basic")
	r := newRP(t, env, web, oauth2.AuthStyleInHeader, "openid", "offline_access")
	b := latchtest.NewBrowser(t)
	verifier := oauth2.GenerateVerifier()
	id := env.StartAuthorize(b, r.conf.AuthCodeURL("log-state-123456", oauth2.S256ChallengeOption(verifier)))
	loc := env.Resume(b, env.Approve(id, map[string]any{"user": "log-user"}))
	code := loc.Query().Get("code")
	tok, err := r.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	// Failures log too: a bad secret and a replayed code.
	postForm(t, env.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, web.ID, "bad-secret-value-123")
	r.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))

	logs := buf.String()
	if !strings.Contains(logs, "/oauth2/token") {
		t.Fatalf("no request logs captured:\n%s", logs)
	}
	for name, v := range map[string]string{
		"session id": id, "code": code, "verifier": verifier, "client secret": web.Secret,
		"access token": tok.AccessToken, "refresh token": tok.RefreshToken, "api key": latchtest.APIKey,
		"bad secret": "bad-secret-value-123",
	} {
		if strings.Contains(logs, v) {
			t.Errorf("logs contain the %s", name)
		}
	}
}
