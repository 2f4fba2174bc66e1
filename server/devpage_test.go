package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchhq/latch/latchtest"
)

// A newcomer's first sign-in: the built-in page, clicked through like a
// browser would, must end in a code that a real client can redeem.
func TestDevConsentPageSignsIn(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{DevPage: true})
	r := newRP(t, env, env.WebClient("client_secret_basic"), oauth2.AuthStyleInHeader, "openid", "email")
	b := latchtest.NewBrowser(t)
	verifier := oauth2.GenerateVerifier()
	id := env.StartAuthorize(b, r.conf.AuthCodeURL("dev-state-123456", oauth2.S256ChallengeOption(verifier)))

	resp, page := b.Get(env.URL + "/dev/consent?token=" + url.QueryEscape(id))
	html := string(page)
	if resp.StatusCode != 200 || !strings.Contains(html, "Development only") || !strings.Contains(html, "Web app") ||
		!strings.Contains(html, `value="email"`) {
		t.Fatalf("dev page: %d\n%s", resp.StatusCode, html)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Error("dev page can be framed")
	}
	form := url.Values{"token": {id}, "decision": {"approve"}, "user": {"dev-user"}, "scope": {"openid", "email"},
		"email": {"dev@example.com"}}
	resp, err := b.HTTP.PostForm(env.URL+"/dev/consent", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("dev decision: %d", resp.StatusCode)
	}
	loc := env.Resume(b, latchtest.Location(t, resp).String())
	if loc.Query().Get("state") != "dev-state-123456" || loc.Query().Get("iss") != env.URL {
		t.Fatalf("redirect %s", loc)
	}
	tok, err := r.conf.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	ui, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != "dev-user" || ui.Email != "dev@example.com" {
		t.Fatalf("userinfo %+v %v", ui, err)
	}
	// The same session cannot be decided again from the page.
	resp, err = b.HTTP.PostForm(env.URL+"/dev/consent", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("second decision: %d, want 409", resp.StatusCode)
	}
}

func TestDevConsentPageIsOffWithApprovalURL(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	if resp, _ := latchtest.NewBrowser(t).Get(env.URL + "/dev/consent?token=x"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("dev page with approval_url set: %d, want 404", resp.StatusCode)
	}
}

// The built-in page gets the same protection as the API: its decision
// redirect carries the verifier, and the browser that started the flow
// cannot finish a decision someone else made on the page with the session
// id alone.
func TestDevConsentPageAttackerStartedFlow(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{DevPage: true})
	r := newRP(t, env, env.WebClient("client_secret_basic"), oauth2.AuthStyleInHeader, "openid")
	attacker, victim := latchtest.NewBrowser(t), latchtest.NewBrowser(t)
	id := env.StartAuthorize(attacker, r.conf.AuthCodeURL("dev-attack-12345", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))

	resp, err := victim.HTTP.PostForm(env.URL+"/dev/consent", url.Values{"token": {id}, "decision": {"approve"}, "user": {"victim"}, "scope": {"openid"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	next := latchtest.Location(t, resp)
	if resp.StatusCode != http.StatusSeeOther || len(next.Query().Get("verifier")) < 22 {
		t.Fatalf("dev decision: %d %s", resp.StatusCode, next)
	}
	if resp, _ := victim.Get(next.String()); resp.StatusCode != http.StatusBadRequest || codeIn(resp) {
		t.Fatalf("victim follows the decision: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, u := range []string{
		env.URL + "/oauth2/authorize/resume?session=" + url.QueryEscape(id),
		env.URL + "/oauth2/authorize/resume?session=" + url.QueryEscape(id) + "&verifier=" + url.QueryEscape(id),
	} {
		if resp, _ := attacker.Get(u); resp.StatusCode < 400 || codeIn(resp) {
			t.Fatalf("attacker's resume %s: %d %s", u, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}
