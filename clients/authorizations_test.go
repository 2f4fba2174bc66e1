package clients_test

import (
	"net/http"
	"slices"
	"testing"

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

	status, out := env.API("GET", "/api/users/ann/authorizations", nil)
	list, _ := out["authorizations"].([]any)
	if status != http.StatusOK || len(list) != 1 || list[0].(map[string]any)["client_id"] != web.ID {
		t.Fatalf("authorizations: %d %v, want one for %s", status, out, web.ID)
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
