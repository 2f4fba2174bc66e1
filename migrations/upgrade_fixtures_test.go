//go:build fixtures

package migrations_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"golang.org/x/oauth2"
	"gorm.io/gorm"

	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage/pgtest"
)

// TestMakeUpgradeFixtures writes testdata/upgrade from real old binaries
// (scripts/make-upgrade-fixtures.sh builds them and sets LATCH_FIXTURE_BINS
// to "N=path@commit,..."). Each old binary serves a fresh database; this
// test signs a user in through it over HTTP like a browser, host app and
// client would, then stops it and saves the database and what was issued.
func TestMakeUpgradeFixtures(t *testing.T) {
	spec := os.Getenv("LATCH_FIXTURE_BINS")
	if spec == "" {
		t.Skip("LATCH_FIXTURE_BINS is not set; run scripts/make-upgrade-fixtures.sh")
	}
	for _, part := range strings.Split(spec, ",") {
		v, rest, _ := strings.Cut(part, "=")
		bin, commit, _ := strings.Cut(rest, "@")
		for _, backend := range []string{"sqlite", "postgres"} {
			t.Run("v"+v+"/"+backend, func(t *testing.T) {
				var version int
				fmt.Sscan(v, &version)
				makeFixture(t, version, bin, commit, backend)
			})
		}
	}
}

func makeFixture(t *testing.T, version int, bin, commit, backend string) {
	dir := t.TempDir()
	dsn := "sqlite://" + filepath.Join(dir, "latch.db")
	args := []string{"serve"}
	if backend == "postgres" {
		dsn = pgtest.DSN(t)
		args = append(args, "--migrate")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	long := "87600h" // ten years: the fixtures must outlive their tests
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"LATCH_DATABASE_DSN=" + dsn, "LATCH_MASTER_KEY=" + latchtest.MasterKey,
		"LATCH_HTTP_ADDR=" + addr, "LATCH_APPROVAL_URL=" + latchtest.ApprovalURL,
		"LATCH_TOKENS_ACCESS_TOKEN_LIFETIME=" + long, "LATCH_TOKENS_ID_TOKEN_LIFETIME=" + long,
		"LATCH_TOKENS_REFRESH_TOKEN_LIFETIME=" + long, "LATCH_LOGIN_SESSION_LIFETIME=" + long,
	}
	if version >= 3 {
		// Since schema 3 retirement must cover the longest token lifetime.
		cmd.Env = append(cmd.Env, "LATCH_KEYS_RETIRE_AFTER="+long)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	printed := make(chan string, 1)
	go func() {
		var all strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "redirect_uri:") {
				printed <- all.String()
			}
		}
	}()
	var out string
	select {
	case out = <-printed:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("old binary printed no demo client")
	}
	base := "http://" + addr
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fx := upgradeFixture{
		Version: version, Commit: commit, Backend: backend,
		Issuer: base, MasterKey: latchtest.MasterKey, Subject: "alice",
		Scopes:       []string{"openid", "profile", "offline_access"},
		AdminAPIKey:  field(t, out, `Admin API key \(shown once, stored hashed\):\n\s+(\S+)`),
		ClientID:     field(t, out, `client_id:\s+(\S+)`),
		ClientSecret: field(t, out, `client_secret:\s+(\S+)`),
		RedirectURI:  field(t, out, `redirect_uri:\s+(\S+)`),
	}
	conf := fx.oauth2(base)
	b := latchtest.NewBrowser(t)
	verifier := oauth2.GenerateVerifier()
	resp, body := b.Get(conf.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "nonce-0123456789")))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("authorize: %d %s", resp.StatusCode, body)
	}
	session := latchtest.Location(t, resp).Query().Get("token")
	status, res := callAPI(t, base, fx.AdminAPIKey, "POST", "/api/auth_session/"+session+"/approve",
		map[string]any{"user": fx.Subject, "remember": true})
	if status != http.StatusOK {
		t.Fatalf("approve: %d %v", status, res)
	}
	resp, body = b.Get(res["redirect_uri"].(string))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("resume: %d %s", resp.StatusCode, body)
	}
	code := latchtest.Location(t, resp).Query().Get("code")
	tok, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	fx.AccessToken, fx.RefreshToken = tok.AccessToken, tok.RefreshToken
	fx.IDToken, _ = tok.Extra("id_token").(string)
	u, _ := url.Parse(base + "/")
	for _, c := range b.HTTP.Jar.Cookies(u) {
		fx.Cookies = append(fx.Cookies, fixtureCookie{Name: c.Name, Value: c.Value})
	}
	resp, err = http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	for _, k := range set.Keys {
		fx.SigningKIDs = append(fx.SigningKIDs, k.KID)
	}

	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("old binary did not stop")
	}

	outDir := filepath.Join("testdata", "upgrade", fmt.Sprintf("v%d", version))
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	switch backend {
	case "sqlite":
		compactSQLite(t, filepath.Join(dir, "latch.db"))
		copyTestFile(t, filepath.Join(dir, "latch.db"), filepath.Join(outDir, "latch.db"))
	case "postgres":
		dump, err := exec.Command("pg_dump", "--inserts", "--no-owner", "--no-privileges", "-d", dsn).Output()
		if err != nil {
			t.Fatalf("pg_dump: %v", err)
		}
		if err := os.WriteFile(filepath.Join(outDir, "postgres.sql"), dump, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := json.MarshalIndent(fx, "", "  ")
	if err := os.WriteFile(filepath.Join(outDir, backend+".json"), append(raw, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func field(t *testing.T, out, re string) string {
	m := regexp.MustCompile(re).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%q not in the old binary's output:\n%s", re, out)
	}
	return m[1]
}

// compactSQLite folds the write-ahead log into the file, so one file is
// the whole database.
func compactSQLite(t *testing.T, path string) {
	db, err := gorm.Open(sqlite.Open(path), &gorm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)").Error; err != nil {
		t.Fatal(err)
	}
	db.Exec("PRAGMA journal_mode=DELETE")
	db.Exec("VACUUM")
	sqlDB, _ := db.DB()
	sqlDB.Close()
}
