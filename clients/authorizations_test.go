package clients_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchhq/latch/latchtest"
)

func TestRememberedAuthorizationAndPromptNone(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	web := env.WebClient("client_secret_basic")
	r := env.NewRP(web)
	b := latchtest.NewBrowser(t)
	base := []string{"openid", "profile"}
	r.Login(t, b, base, map[string]any{"user": "ann", "remember": true})

	// Covered: a code at once, no approval round trip.
	loc, verifier := r.Silent(t, b, base)
	if loc.Query().Get("error") != "" || loc.Query().Get("iss") != env.URL {
		t.Fatalf("prompt=none with a covering authorization: %s", loc)
	}
	if tok := r.Exchange(t, loc, verifier); tok.AccessToken == "" {
		t.Fatal("no access token from the silent code")
	}

	// More scopes than remembered: consent_required silently, approval again otherwise.
	more := []string{"openid", "profile", "email"}
	if loc, _ := r.Silent(t, b, more); loc.Query().Get("error") != "consent_required" {
		t.Errorf("prompt=none asking for more: %s, want consent_required", loc)
	}
	u, _ := r.AuthURL(more)
	id := env.StartAuthorize(b, u)
	status, view := env.API("GET", "/api/auth_session/"+id, nil)
	if status != http.StatusOK || view["user"] != "ann" {
		t.Fatalf("session read: %d %v, want user ann", status, view)
	}
	granted, _ := view["granted_scopes"].([]any)
	if len(granted) != 2 || !slices.Contains(granted, any("openid")) || !slices.Contains(granted, any("profile")) {
		t.Errorf("granted_scopes %v, want openid profile", view["granted_scopes"])
	}

	// A browser nobody signed in with: login_required.
	if loc, _ := r.Silent(t, latchtest.NewBrowser(t), base); loc.Query().Get("error") != "login_required" {
		t.Errorf("prompt=none without login: %s, want login_required", loc)
	}

	// Signed in but never remembered for this client: consent_required.
	other := env.NewRP(env.WebClient("client_secret_basic"))
	other.Login(t, b, base, map[string]any{"user": "ann"})
	if loc, _ := other.Silent(t, b, base); loc.Query().Get("error") != "consent_required" {
		t.Errorf("prompt=none without remember: %s, want consent_required", loc)
	}

	// Both clients hold live tokens of ann's, so both are listed; only the
	// first is remembered.
	status, out := env.API("GET", "/api/users/ann/authorizations", nil)
	list, _ := out["authorizations"].([]any)
	if status != http.StatusOK || len(list) != 2 {
		t.Fatalf("authorizations: %d %v, want two", status, out)
	}
	for _, item := range list {
		a := item.(map[string]any)
		if (a["client_id"] == web.ID) != (a["remembered"] == true) {
			t.Errorf("remembered flag wrong: %v", a)
		}
	}
	if status, out := env.API("GET", "/api/users/nobody/authorizations", nil); status != http.StatusOK || len(out["authorizations"].([]any)) != 0 {
		t.Errorf("no authorizations: %d %v, want 200 []", status, out)
	}
}

func TestRevokingAuthorizationRevokesOnlyThatUsersTokens(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	web := env.WebClient("client_secret_basic")
	r := env.NewRP(web)
	scopes := []string{"openid", "offline_access"}
	ann := r.Login(t, latchtest.NewBrowser(t), scopes, map[string]any{"user": "ann", "remember": true})
	bob := r.Login(t, latchtest.NewBrowser(t), scopes, map[string]any{"user": "bob", "remember": true})
	if ann.RefreshToken == "" || bob.RefreshToken == "" {
		t.Fatal("no refresh tokens")
	}

	status, _ := env.API("DELETE", "/api/users/ann/authorizations/"+web.ID, nil)
	if status != http.StatusNoContent {
		t.Fatalf("revoke: %d, want 204", status)
	}
	_, err := r.Refresh(ann.RefreshToken)
	if re, ok := err.(*oauth2.RetrieveError); !ok || re.ErrorCode != "invalid_grant" {
		t.Errorf("ann's refresh after revocation: %v, want invalid_grant", err)
	}
	if introspectActive(t, env, ann.AccessToken) {
		t.Error("ann's access token still active")
	}
	if _, err := r.Refresh(bob.RefreshToken); err != nil {
		t.Errorf("bob's refresh broke: %v", err)
	}
	if status, out := env.API("GET", "/api/users/ann/authorizations", nil); len(out["authorizations"].([]any)) != 0 {
		t.Errorf("after revoke: %d %v", status, out)
	}
	if status, _ := env.API("DELETE", "/api/users/ann/authorizations/"+web.ID, nil); status != http.StatusNotFound {
		t.Errorf("second revoke: %d, want 404", status)
	}
}

// TestRevokingUnrememberedGrant: a user who approved without remember still
// holds live tokens, and DELETE must revoke them and commit (it answered
// 404 and rolled the revocation back).
func TestRevokingUnrememberedGrant(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	web := env.WebClient("client_secret_basic")
	r := env.NewRP(web)
	tok := r.Login(t, latchtest.NewBrowser(t), []string{"openid", "offline_access"}, map[string]any{"user": "cid"})

	if status, out := env.API("DELETE", "/api/users/cid/authorizations/"+web.ID, nil); status != http.StatusNoContent {
		t.Fatalf("revoke an unremembered grant: %d %v, want 204", status, out)
	}
	if introspectActive(t, env, tok.AccessToken) {
		t.Error("access token still active after the revocation")
	}
	if _, err := r.Refresh(tok.RefreshToken); err == nil {
		t.Error("refresh token still works after the revocation")
	}
	// Nothing left to revoke; an unknown client has nothing either.
	if status, _ := env.API("DELETE", "/api/users/cid/authorizations/"+web.ID, nil); status != http.StatusNotFound {
		t.Errorf("second revoke: %d, want 404", status)
	}
	if status, _ := env.API("DELETE", "/api/users/cid/authorizations/no-such-client", nil); status != http.StatusNotFound {
		t.Errorf("revoke for an unknown client: %d, want 404", status)
	}
}

// TestConnectedAppsListsUnrememberedGrants: the list a host app builds a
// "connected apps" page from holds every client with live tokens of the
// user, with scopes, remembered, first and last use; a grant whose tokens
// all ended drops out.
func TestConnectedAppsListsUnrememberedGrants(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	mail, notes := env.WebClient("client_secret_basic"), env.WebClient("client_secret_basic")
	mr, nr := env.NewRP(mail), env.NewRP(notes)
	before := time.Now().Add(-time.Second)
	tok := mr.Login(t, latchtest.NewBrowser(t), []string{"openid", "offline_access"}, map[string]any{"user": "dee"})
	nr.Login(t, latchtest.NewBrowser(t), []string{"openid", "profile"}, map[string]any{"user": "dee", "remember": true})
	if _, err := mr.Refresh(tok.RefreshToken); err != nil {
		t.Fatal(err)
	}

	status, out := env.API("GET", "/api/users/dee/authorizations", nil)
	list, _ := out["authorizations"].([]any)
	if status != http.StatusOK || len(list) != 2 {
		t.Fatalf("connected apps: %d %v", status, out)
	}
	byID := map[any]map[string]any{}
	for _, item := range list {
		byID[item.(map[string]any)["client_id"]] = item.(map[string]any)
	}
	m := byID[mail.ID]
	if m == nil || m["remembered"] != false || m["live_tokens"] != true || m["user"] != "dee" {
		t.Fatalf("unremembered grant: %v", m)
	}
	if scopes, _ := m["scopes"].([]any); len(scopes) != 2 || !slices.Contains(scopes, any("offline_access")) {
		t.Errorf("scopes %v, want openid offline_access", m["scopes"])
	}
	first, err1 := time.Parse(time.RFC3339Nano, m["first_used_at"].(string))
	last, err2 := time.Parse(time.RFC3339Nano, m["last_used_at"].(string))
	if err1 != nil || err2 != nil || first.Before(before) || !last.After(first) {
		t.Errorf("first %v last %v: want the exchange, then the later refresh", m["first_used_at"], m["last_used_at"])
	}
	if n := byID[notes.ID]; n == nil || n["remembered"] != true || n["created_at"] == nil {
		t.Errorf("remembered grant: %v", n)
	}
}

// TestRevokeEverythingAUserGranted: DELETE /api/users/{user}/authorizations
// revokes remembered and unremembered grants alike, leaves other users'
// alone, and is idempotent.
func TestRevokeEverythingAUserGranted(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	a, b := env.WebClient("client_secret_basic"), env.WebClient("client_secret_basic")
	ra, rb := env.NewRP(a), env.NewRP(b)
	scopes := []string{"openid", "offline_access"}
	eveA := ra.Login(t, latchtest.NewBrowser(t), scopes, map[string]any{"user": "eve", "remember": true})
	eveB := rb.Login(t, latchtest.NewBrowser(t), scopes, map[string]any{"user": "eve"})
	fay := ra.Login(t, latchtest.NewBrowser(t), scopes, map[string]any{"user": "fay", "remember": true})

	if status, _ := env.APIWithKey("", "DELETE", "/api/users/eve/authorizations", nil); status != http.StatusUnauthorized {
		t.Fatalf("without API key: %d", status)
	}
	if status, out := env.API("DELETE", "/api/users/eve/authorizations", nil); status != http.StatusNoContent {
		t.Fatalf("revoke all: %d %v", status, out)
	}
	for name, rt := range map[string]struct {
		r   *latchtest.RP
		tok string
	}{"remembered": {ra, eveA.RefreshToken}, "unremembered": {rb, eveB.RefreshToken}} {
		if _, err := rt.r.Refresh(rt.tok); err == nil {
			t.Errorf("%s grant still refreshes after revoke-all", name)
		}
	}
	if introspectActive(t, env, eveB.AccessToken) {
		t.Error("access token still active after revoke-all")
	}
	if _, out := env.API("GET", "/api/users/eve/authorizations", nil); len(out["authorizations"].([]any)) != 0 {
		t.Errorf("after revoke-all: %v", out)
	}
	if _, err := ra.Refresh(fay.RefreshToken); err != nil {
		t.Errorf("another user's grant broke: %v", err)
	}
	if status, _ := env.API("DELETE", "/api/users/eve/authorizations", nil); status != http.StatusNoContent {
		t.Errorf("second revoke-all: %d", status)
	}
	_, out := env.API("GET", "/api/audit?event=authorization.revoked&user=eve", nil)
	if evs, _ := out["events"].([]any); len(evs) != 2 {
		t.Errorf("audit: want one revocation per client: %v", out)
	}
}
