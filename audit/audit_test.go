package audit_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage"
)

// allEvents pages through GET /api/audit with query q.
func allEvents(t *testing.T, env *latchtest.Env, q string) []map[string]any {
	t.Helper()
	var out []map[string]any
	cursor := ""
	for range 100 {
		path := "/api/audit?limit=7&" + q
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		status, page := env.API("GET", path, nil)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, status, page)
		}
		for _, e := range page["events"].([]any) {
			out = append(out, e.(map[string]any))
		}
		if cursor, _ = page["next_cursor"].(string); cursor == "" {
			return out
		}
	}
	t.Fatal("audit pagination does not end")
	return nil
}

// find returns the oldest event called name about client, if client is
// set (evs are newest first).
func find(evs []map[string]any, name, client string) map[string]any {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i]["event"] == name && (client == "" || evs[i]["client_id"] == client) {
			return evs[i]
		}
	}
	return nil
}

// TestFullFlowAuditTrailHoldsNoSecrets runs every audited action once, checks
// each left its event with actor, user, client, IP and outcome, and that no
// secret, token, code or API key reached the audit rows or the logs.
func TestFullFlowAuditTrailHoldsNoSecrets(t *testing.T) {
	logs := &latchtest.SyncBuffer{}
	env := latchtest.Start(t, latchtest.Options{Log: logs})
	ctx := context.Background()
	var secrets []string

	status, created := env.API("POST", "/api/clients", map[string]any{
		"client_name": "Audited", "redirect_uris": []string{"https://client.example/cb"},
		"grant_types": []string{"authorization_code", "refresh_token"},
	})
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, created)
	}
	c := latchtest.Client{ID: created["client_id"].(string), Secret: created["client_secret"].(string), RedirectURIs: []string{"https://client.example/cb"}}
	secrets = append(secrets, c.Secret, latchtest.APIKey, latchtest.MasterKey)
	r := env.NewRP(c)

	// Approve, exchange, replay the code.
	b := latchtest.NewBrowser(t)
	u, verifier := r.AuthURL([]string{"openid", "offline_access"})
	id := env.StartAuthorize(b, u)
	loc := env.Resume(b, env.Approve(id, map[string]any{"user": "ann", "remember": true, "claims": map[string]any{"email": "ann@example.com"}}))
	code := loc.Query().Get("code")
	tok := r.Exchange(t, loc, verifier)
	secrets = append(secrets, id, code, tok.AccessToken, tok.RefreshToken, tok.Extra("id_token").(string))

	// Refresh, replay the old refresh token, then the code.
	tok2, err := r.Refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	secrets = append(secrets, tok2.AccessToken, tok2.RefreshToken)
	if _, err := r.Refresh(tok.RefreshToken); err == nil {
		t.Fatal("refresh replay succeeded")
	}
	if _, err := r.Conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err == nil {
		t.Fatal("code replay succeeded")
	}

	// A denied session, a revocation, a rotation, a deletion, key use.
	denied := env.StartAuthorize(latchtest.NewBrowser(t), u)
	env.Deny(denied)
	tok3 := r.Login(t, latchtest.NewBrowser(t), []string{"openid", "offline_access"}, map[string]any{"user": "bob"})
	secrets = append(secrets, denied, tok3.AccessToken, tok3.RefreshToken)
	if resp, _ := latchtest.PostForm(t, env.URL+"/oauth2/revoke", url.Values{"token": {tok3.RefreshToken}}, c.ID, c.Secret); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	status, rot := env.API("POST", "/api/clients/"+c.ID+"/secret", map[string]any{"grace_period": "10m"})
	if status != http.StatusOK {
		t.Fatalf("rotate: %d %v", status, rot)
	}
	secrets = append(secrets, rot["client_secret"].(string))
	env.API("PATCH", "/api/clients/"+c.ID, map[string]any{"client_name": "Audited 2"})
	k, plain, err := env.App.NewAPIKey(ctx, "second")
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, plain)
	if s, _ := env.APIWithKey(plain, "GET", "/api/clients", nil); s != http.StatusOK {
		t.Fatalf("second key: %d", s)
	}
	if s, _ := env.APIWithKey("latch_guess", "GET", "/api/clients", nil); s != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d", s)
	}
	if s, _ := env.API("DELETE", "/api/users/ann/authorizations/"+c.ID, nil); s != http.StatusNoContent {
		t.Fatalf("revoke authorization: %d", s)
	}
	if s, _ := env.API("DELETE", "/api/clients/"+c.ID, nil); s != http.StatusNoContent {
		t.Fatalf("delete: %d", s)
	}

	evs := allEvents(t, env, "")
	want := []struct {
		event, actorType, actorID, user, client, outcome string
	}{
		{audit.ClientCreated, audit.ActorAPIKey, "config", "", c.ID, audit.Success},
		{audit.SessionCreated, "", "", "", c.ID, audit.Success},
		{audit.SessionApproved, audit.ActorAPIKey, "config", "ann", c.ID, audit.Success},
		{audit.SessionDenied, audit.ActorAPIKey, "config", "", c.ID, audit.Success},
		{audit.CodeIssued, "", "", "ann", c.ID, audit.Success},
		{audit.CodeExchanged, audit.ActorClient, c.ID, "ann", c.ID, audit.Success},
		{audit.CodeReplayed, audit.ActorClient, c.ID, "ann", c.ID, audit.Failure},
		{audit.TokenRefreshed, audit.ActorClient, c.ID, "ann", c.ID, audit.Success},
		{audit.TokenReplayed, audit.ActorClient, c.ID, "ann", c.ID, audit.Failure},
		{audit.TokenRevoked, audit.ActorClient, c.ID, "", c.ID, audit.Success},
		{audit.ClientSecretRotated, audit.ActorAPIKey, "config", "", c.ID, audit.Success},
		{audit.ClientUpdated, audit.ActorAPIKey, "config", "", c.ID, audit.Success},
		{audit.ClientDeleted, audit.ActorAPIKey, "config", "", c.ID, audit.Success},
		{audit.AuthorizationRevoked, audit.ActorAPIKey, "config", "ann", c.ID, audit.Success},
		{audit.APIKeyCreated, "", "", "", "", audit.Success},
		{audit.APIKeyUsed, audit.ActorAPIKey, k.ID, "", "", audit.Success},
		{audit.APIKeyFailed, "", "", "", "", audit.Failure},
	}
	for _, w := range want {
		e := find(evs, w.event, w.client)
		if w.event == audit.APIKeyUsed {
			e = nil
			for _, ev := range evs {
				if ev["event"] == w.event && ev["actor_id"] == k.ID {
					e = ev
				}
			}
		}
		if e == nil {
			t.Errorf("no %s event", w.event)
			continue
		}
		get := func(k string) string { s, _ := e[k].(string); return s }
		ip := "127.0.0.1"
		if w.event == audit.APIKeyCreated {
			ip = "" // made in-process, not over HTTP
		}
		if get("actor_type") != w.actorType || get("actor_id") != w.actorID || get("user") != w.user ||
			get("client_id") != w.client || get("outcome") != w.outcome || get("ip") != ip || get("time") == "" {
			t.Errorf("%s event %v, want actor %s/%s user %q client %q outcome %s from 127.0.0.1",
				w.event, e, w.actorType, w.actorID, w.user, w.client, w.outcome)
		}
	}

	rows, err := env.App.Store.ListAudit(ctx, storage.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(rows)
	for _, s := range secrets {
		if s == "" {
			t.Fatal("empty secret in the list")
		}
		if strings.Contains(string(raw), s) {
			t.Errorf("audit rows contain a secret or token: %.12s...", s)
		}
		if strings.Contains(logs.String(), s) {
			t.Errorf("logs contain a secret or token: %.12s...", s)
		}
		// A JWT's signature alone is enough to replay it.
		if parts := strings.Split(s, "."); len(parts) == 3 && (strings.Contains(string(raw), parts[2]) || strings.Contains(logs.String(), parts[2])) {
			t.Errorf("audit rows or logs contain a JWT signature")
		}
	}
	if !strings.Contains(logs.String(), "/oauth2/token") {
		t.Fatal("logs were not captured (the check above would prove nothing)")
	}
}

func TestAuditFiltersAndPagination(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	env := latchtest.Start(t, latchtest.Options{Now: func() time.Time { return clock() }})
	rec := audit.New(env.App.Store, nil)
	ctx := context.Background()
	for i := range 5 {
		now = now.Add(time.Hour)
		rec.Record(ctx, audit.Event{Name: audit.KeyRotated, ClientID: []string{"c1", "c2"}[i%2], User: "u" + string(rune('0'+i%2))})
	}
	if n := len(allEvents(t, env, "event=key.rotated")); n != 5 {
		t.Errorf("event filter: %d, want 5", n)
	}
	if n := len(allEvents(t, env, "event=key.rotated&client_id=c1")); n != 3 {
		t.Errorf("client_id filter: %d, want 3", n)
	}
	if n := len(allEvents(t, env, "event=key.rotated&user=u1")); n != 2 {
		t.Errorf("user filter: %d, want 2", n)
	}
	// Events at 13:00 .. 17:00; [14:00, 16:00) holds two.
	if n := len(allEvents(t, env, "event=key.rotated&since=2026-03-01T14:00:00Z&until=2026-03-01T16:00:00Z")); n != 2 {
		t.Errorf("time range: %d, want 2", n)
	}
	status, page := env.API("GET", "/api/audit?event=key.rotated&limit=2", nil)
	evs := page["events"].([]any)
	if status != http.StatusOK || len(evs) != 2 || page["next_cursor"] == "" {
		t.Fatalf("first page: %d %v", status, page)
	}
	if first, second := evs[0].(map[string]any)["id"].(float64), evs[1].(map[string]any)["id"].(float64); first <= second {
		t.Errorf("events not newest first: %v then %v", first, second)
	}
	for _, bad := range []string{"event=nope", "since=yesterday", "until=2026-13-01", "limit=0", "cursor=eA"} {
		if status, out := env.API("GET", "/api/audit?"+bad, nil); status != http.StatusBadRequest || out["error"] != "invalid_request" {
			t.Errorf("%s: %d %v, want 400", bad, status, out)
		}
	}

	// Retention: everything older than the cutoff goes.
	res, err := env.App.Store.Purge(ctx, storage.JanitorOptions{AuditRetention: now.Sub(time.Date(2026, 3, 1, 15, 30, 0, 0, time.UTC))})
	if n := res["audit_events"]; err != nil || n < 3 {
		t.Fatalf("janitor pruned %d audit events: %v", n, err)
	}
	if n := len(allEvents(t, env, "event=key.rotated")); n != 2 {
		t.Errorf("after prune: %d key.rotated events, want 2", n)
	}
}
