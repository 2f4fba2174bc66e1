package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
)

func basicAuth(id, secret string) map[string]string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return map[string]string{"Authorization": req.Header.Get("Authorization")}
}

func authParams(clientID, redirect, verifier string) url.Values {
	return url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"scope": {"openid"}, "state": {"st-abcdefgh"}, "nonce": {"n-abcdefgh"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
}

// TestPARThenAuthorize: a confidential client pushes its request, the
// browser carries only client_id and request_uri, the approval completes
// (the request is rebuilt at resume without redeeming the request_uri
// again), the code is exchanged; the request_uri cannot be used twice.
// Required globally, only pushed requests are accepted.
func TestPARThenAuthorize(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{Configure: func(c *config.Config) { c.PAR.Required = true }})
	c := env.WebClient("client_secret_basic")
	parURL := env.URL + "/oauth2/par"
	verifier := oauth2.GenerateVerifier()
	params := authParams(c.ID, c.RedirectURIs[0], verifier)

	resp, body := send(t, "POST", parURL, params, basicAuth(c.ID, "wrong-secret"))
	wantOAuthError(t, "push with a wrong secret", resp, body, 401, "invalid_client")
	plain := url.Values{}
	for k, v := range params {
		plain[k] = v
	}
	plain.Set("code_challenge_method", "plain")
	resp, body = send(t, "POST", parURL, plain, basicAuth(c.ID, c.Secret))
	wantOAuthError(t, "push with plain PKCE", resp, body, 400, "invalid_request")

	// Without pushing, the request is refused (after redirect validation,
	// so by redirect with iss).
	b := latchtest.NewBrowser(t)
	r, _ := b.Get(env.URL + "/oauth2/authorize?" + params.Encode())
	if loc := latchtest.Location(t, r); loc.Query().Get("error") != "invalid_request" || loc.Query().Get("iss") != env.URL {
		t.Fatalf("unpushed request: %s", loc)
	}

	resp, body = send(t, "POST", parURL, params, basicAuth(c.ID, c.Secret))
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("push: %d %v", resp.StatusCode, body)
	}
	requestURI, _ := body["request_uri"].(string)
	if !strings.HasPrefix(requestURI, "urn:ietf:params:oauth:request_uri:") || body["expires_in"] != float64(60) {
		t.Fatalf("push response %v", body)
	}
	authURL := env.URL + "/oauth2/authorize?" + url.Values{"client_id": {c.ID}, "request_uri": {requestURI}}.Encode()
	loc := env.Authorize(b, authURL, map[string]any{"user": "par-user"})
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), c.RedirectURIs[0]+"?") || q.Get("code") == "" || q.Get("state") != "st-abcdefgh" || q.Get("iss") != env.URL {
		t.Fatalf("authorization response %s", loc)
	}
	resp, body = send(t, "POST", env.URL+"/oauth2/token", url.Values{"grant_type": {"authorization_code"},
		"code": {q.Get("code")}, "redirect_uri": {c.RedirectURIs[0]}, "code_verifier": {verifier}}, basicAuth(c.ID, c.Secret))
	if resp.StatusCode != 200 || body["id_token"] == nil {
		t.Fatalf("exchange: %d %v", resp.StatusCode, body)
	}
	if _, idc := jwtParts(t, body["id_token"].(string)); idc["nonce"] != "n-abcdefgh" || idc["sub"] != "par-user" {
		t.Fatalf("id_token claims %v", idc)
	}

	// Single use: the same request_uri again is refused, to the browser.
	r, raw := latchtest.NewBrowser(t).Get(authURL)
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "invalid_request_uri") {
		t.Fatalf("reused request_uri: %d %s", r.StatusCode, raw)
	}
}

// TestPARRequiredPerClient: only the marked client must push.
func TestPARRequiredPerClient(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	strict := env.RegisterClient(map[string]any{"client_name": "Strict", "redirect_uris": []string{"https://client.example/cb"},
		"grant_types": []string{"authorization_code", "refresh_token"}, "require_pushed_authorization_requests": true})
	lax := env.WebClient("client_secret_basic")
	verifier := oauth2.GenerateVerifier()

	r, _ := latchtest.NewBrowser(t).Get(env.URL + "/oauth2/authorize?" + authParams(strict.ID, strict.RedirectURIs[0], verifier).Encode())
	if loc := latchtest.Location(t, r); loc.Query().Get("error") != "invalid_request" {
		t.Fatalf("strict client without PAR: %s", loc)
	}
	env.StartAuthorize(latchtest.NewBrowser(t), env.URL+"/oauth2/authorize?"+authParams(lax.ID, lax.RedirectURIs[0], verifier).Encode())

	// Another client cannot redeem the strict client's request_uri.
	_, body := send(t, "POST", env.URL+"/oauth2/par", authParams(strict.ID, strict.RedirectURIs[0], verifier), basicAuth(strict.ID, strict.Secret))
	r, raw := latchtest.NewBrowser(t).Get(env.URL + "/oauth2/authorize?" + url.Values{"client_id": {lax.ID}, "request_uri": {body["request_uri"].(string)}}.Encode())
	if r.StatusCode != http.StatusBadRequest && r.StatusCode != http.StatusSeeOther {
		t.Fatalf("foreign request_uri: %d %s", r.StatusCode, raw)
	}
	if r.StatusCode == http.StatusSeeOther && latchtest.Location(t, r).Query().Get("code") != "" {
		t.Fatal("foreign request_uri produced a code")
	}
}

// TestPARWithDPoPBindsCode: a public client pushes with a DPoP proof; the
// code is bound to that key (RFC 9449 §10.1).
func TestPARWithDPoPBindsCode(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	c := env.NativeClient()
	key := newDPoPKey(t)
	redirect := "http://127.0.0.1:53127/callback"
	verifier := oauth2.GenerateVerifier()
	parURL, tokenURL := env.URL+"/oauth2/par", env.URL+"/oauth2/token"

	other := newDPoPKey(t)
	otherJKT, _ := other.JKT()
	mismatch := authParams(c.ID, redirect, verifier)
	mismatch.Set("dpop_jkt", otherJKT)
	resp, body := send(t, "POST", parURL, mismatch, map[string]string{"DPoP": proof(t, key, "POST", parURL, "", "")})
	wantOAuthError(t, "dpop_jkt not matching the proof", resp, body, 400, "invalid_dpop_proof")

	resp, body = send(t, "POST", parURL, authParams(c.ID, redirect, verifier), map[string]string{"DPoP": proof(t, key, "POST", parURL, "", "")})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push: %d %v", resp.StatusCode, body)
	}
	loc := env.Authorize(latchtest.NewBrowser(t), env.URL+"/oauth2/authorize?"+url.Values{"client_id": {c.ID}, "request_uri": {body["request_uri"].(string)}}.Encode(), map[string]any{"user": "u"})
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {redirect},
		"client_id": {c.ID}, "code_verifier": {verifier}}
	resp, body = send(t, "POST", tokenURL, exchange, map[string]string{"DPoP": proof(t, other, "POST", tokenURL, "", "")})
	wantOAuthError(t, "exchange with another key", resp, body, 400, "invalid_dpop_proof")
	resp, body = send(t, "POST", tokenURL, exchange, map[string]string{"DPoP": proof(t, key, "POST", tokenURL, "", "")})
	if resp.StatusCode != 200 || body["token_type"] != "DPoP" {
		t.Fatalf("exchange: %d %v", resp.StatusCode, body)
	}
}

// TestResumeKeepsTheApprovedClient: the host app's consent screen names the
// auth session's client; if the stored request ever names another (the
// way a request object or a merged pushed request could make it), resume
// refuses rather than issue that other client a code the user never
// agreed to.
func TestResumeKeepsTheApprovedClient(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	shown, other := env.WebClient("client_secret_basic"), env.WebClient("client_secret_basic")
	b := latchtest.NewBrowser(t)
	id := env.StartAuthorize(b, env.URL+"/oauth2/authorize?"+authParams(shown.ID, shown.RedirectURIs[0], oauth2.GenerateVerifier()).Encode())
	if status, view := env.API("GET", "/api/auth_session/"+id, nil); status != 200 || view["client"].(map[string]any)["client_id"] != shown.ID {
		t.Fatalf("consent view: %d %v", status, view)
	}
	err := env.App.Store.DB().Exec(`UPDATE auth_sessions SET request_form = REPLACE(request_form, ?, ?) WHERE id = ?`,
		"client_id="+shown.ID, "client_id="+other.ID, id).Error
	if err != nil {
		t.Fatal(err)
	}
	resp, body := b.Get(env.Approve(id, map[string]any{"user": "alice"}))
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(string(body), "invalid_request") {
		t.Fatalf("resume for another client: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
}
