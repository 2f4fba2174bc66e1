package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchhq/latch/latchtest"
)

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	formInput  = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	scriptTag  = regexp.MustCompile(`<script nonce="([^"]+)">([^<]*)</script>`)
)

// formPost reads an auto-submitting form_post page: where it posts and what.
func formPost(t *testing.T, resp *http.Response, body []byte) (string, map[string]string) {
	t.Helper()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("form_post: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	m := formAction.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no form in %s", body)
	}
	fields := map[string]string{}
	for _, f := range formInput.FindAllSubmatch(body, -1) {
		fields[string(f[1])] = strings.ReplaceAll(string(f[2]), "&#43;", "+")
	}
	return string(m[1]), fields
}

// TestFormPostResponseMode: response_mode=form_post (ASP.NET Core's
// default) answers with a page that POSTs code, state and iss to the
// redirect URI, errors likewise, under a CSP that allows exactly that:
// the one script by its nonce, the form only to the redirect origin.
func TestFormPostResponseMode(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	c := env.WebClient("client_secret_basic")
	r := newRP(t, env, c, oauth2.AuthStyleInHeader, "openid")
	verifier := oauth2.GenerateVerifier()
	authURL := r.conf.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("response_mode", "form_post"))
	b := latchtest.NewBrowser(t)
	id := env.StartAuthorize(b, authURL)
	resp, body := b.Get(env.Approve(id, map[string]any{"user": "u1"}))
	action, fields := formPost(t, resp, body)
	if action != "https://client.example/cb" || fields["state"] != "st-1" || fields["iss"] != env.URL || fields["code"] == "" {
		t.Fatalf("form posts %v to %s", fields, action)
	}
	if strings.Contains(resp.Header.Get("Location"), "code=") {
		t.Fatal("the code also travelled in a redirect")
	}
	csp := resp.Header.Get("Content-Security-Policy")
	script := scriptTag.FindSubmatch(body)
	if script == nil || string(script[2]) != "document.forms[0].submit();" {
		t.Fatalf("no auto-submit script in %s", body)
	}
	for _, want := range []string{"default-src 'none'", "script-src 'nonce-" + string(script[1]) + "'", "form-action https://client.example;", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q allows inline code", csp)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	// The posted code is a good code.
	if _, err := r.conf.Exchange(context.Background(), fields["code"], oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("exchange the posted code: %v", err)
	}

	// A second page gets another nonce.
	b2 := latchtest.NewBrowser(t)
	resp2, body2 := b2.Get(env.Deny(env.StartAuthorize(b2, authURL)))
	_, denied := formPost(t, resp2, body2)
	if denied["error"] != "access_denied" || denied["state"] != "st-1" || denied["iss"] != env.URL {
		t.Errorf("denial posts %v", denied)
	}
	if s2 := scriptTag.FindSubmatch(body2); s2 == nil || string(s2[1]) == string(script[1]) {
		t.Error("script nonce reused across responses")
	}

	// An error found at the authorization request is posted too.
	resp, body = latchtest.NewBrowser(t).Get(r.conf.AuthCodeURL("st-2", oauth2.SetAuthURLParam("response_mode", "form_post")))
	if _, f := formPost(t, resp, body); f["error"] != "invalid_request" || f["state"] != "st-2" || f["iss"] != env.URL {
		t.Errorf("error without PKCE posts %v", f)
	}
	// A pushed request keeps its response mode.
	_, pushed := postForm(t, env.URL+"/oauth2/par", url.Values{"response_type": {"code"}, "client_id": {c.ID},
		"redirect_uri": {c.RedirectURIs[0]}, "scope": {"openid"}, "state": {"st-par"}, "response_mode": {"form_post"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}, c.ID, c.Secret)
	uri, _ := pushed["request_uri"].(string)
	if uri == "" {
		t.Fatalf("PAR: %v", pushed)
	}
	b3 := latchtest.NewBrowser(t)
	resp, body = b3.Get(env.Approve(env.StartAuthorize(b3, env.URL+"/oauth2/authorize?"+url.Values{"client_id": {c.ID}, "request_uri": {uri}}.Encode()), map[string]any{"user": "u1"}))
	if _, f := formPost(t, resp, body); f["code"] == "" || f["state"] != "st-par" || f["iss"] != env.URL {
		t.Errorf("pushed form_post posts %v", f)
	}
	// So does an error answered at the pushed request's redemption.
	_, pushed = postForm(t, env.URL+"/oauth2/par", url.Values{"response_type": {"code"}, "client_id": {c.ID},
		"redirect_uri": {c.RedirectURIs[0]}, "scope": {"openid"}, "state": {"st-none"}, "response_mode": {"form_post"}, "prompt": {"none"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"}}, c.ID, c.Secret)
	resp, body = latchtest.NewBrowser(t).Get(env.URL + "/oauth2/authorize?" + url.Values{"client_id": {c.ID}, "request_uri": {fmt.Sprint(pushed["request_uri"])}}.Encode())
	if _, f := formPost(t, resp, body); f["error"] != "login_required" || f["state"] != "st-none" {
		t.Errorf("pushed prompt=none without a login posts %v", f)
	}
	// Fragment (implicit/hybrid) stays refused.
	resp, _ = latchtest.NewBrowser(t).Get(r.conf.AuthCodeURL("st-3", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("response_mode", "fragment")))
	if q := latchtest.Location(t, resp).Query(); q.Get("error") != "unsupported_response_mode" {
		t.Errorf("fragment: %v", q)
	}
}
