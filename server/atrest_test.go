package server_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchhq/latch/latchtest"
)

// A stolen database alone must not yield a usable credential: after a full
// flow, no code, token, secret or cookie value is in the database files.
func TestNothingUsableIsStoredInPlaintext(t *testing.T) {
	dir := t.TempDir()
	env := latchtest.Start(t, latchtest.Options{DSN: "sqlite://" + filepath.Join(dir, "latch.db")})
	web := env.WebClient("client_secret_basic")
	r := newRP(t, env, web, oauth2.AuthStyleInHeader, "openid", "offline_access")
	b := latchtest.NewBrowser(t)
	verifier := oauth2.GenerateVerifier()
	id := env.StartAuthorize(b, r.conf.AuthCodeURL("rest-state-12345", oauth2.S256ChallengeOption(verifier)))
	loc := env.Resume(b, env.Approve(id, map[string]any{"user": "rest-user"}))
	tok, err := r.conf.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	tok2, err := r.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	var cookies []string
	for _, c := range b.HTTP.Jar.Cookies(mustURL(env.URL)) {
		cookies = append(cookies, c.Value)
	}
	if len(cookies) < 2 {
		t.Fatalf("expected binding and login cookies, got %d", len(cookies))
	}
	var db []byte
	for _, suffix := range []string{"", "-wal"} {
		raw, _ := os.ReadFile(filepath.Join(dir, "latch.db"+suffix))
		db = append(db, raw...)
	}
	secrets := map[string]string{
		"code": loc.Query().Get("code"), "client secret": web.Secret, "refresh token": tok.RefreshToken,
		"rotated refresh token": tok2.RefreshToken, "api key": latchtest.APIKey,
		// The HMAC part of a code or refresh token is the stored signature;
		// the secret part before the dot must never appear.
		"code key part":    strings.SplitN(loc.Query().Get("code"), ".", 2)[0],
		"refresh key part": strings.SplitN(tok2.RefreshToken, ".", 2)[0],
	}
	for i, c := range cookies {
		secrets["cookie "+string(rune('A'+i))] = c
	}
	for name, v := range secrets {
		if v != "" && bytes.Contains(db, []byte(v)) {
			t.Errorf("the %s is stored in plaintext", name)
		}
	}
	// JWT access tokens: the signature is stored, the whole token is not.
	if bytes.Contains(db, []byte(tok2.AccessToken)) {
		t.Error("an access token is stored whole")
	}
	if !bytes.Contains(db, []byte("ES256")) {
		t.Fatal("sanity: the database files were not read")
	}
}
