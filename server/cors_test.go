package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchhq/latch/latchtest"
)

func corsRequest(t *testing.T, method, u, origin string, body url.Values, hdr map[string]string) *http.Response {
	t.Helper()
	var rd *strings.Reader
	if body != nil {
		rd = strings.NewReader(body.Encode())
	} else {
		rd = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, u, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestCORS: a browser app (public client with PKCE) registered with
// allowed_cors_origins may call token, revocation and userinfo from that
// origin, preflight and request; an unlisted origin gets no CORS headers,
// nor does an origin another client registered for this client's
// requests; discovery and JWKS answer any origin; the authorization
// endpoint and /api never send CORS headers.
func TestCORS(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	const spaOrigin, otherOrigin, evil = "https://spa.example", "https://other.example", "https://evil.example"
	spa := env.RegisterClient(map[string]any{"client_name": "SPA", "redirect_uris": []string{"https://spa.example/cb"},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"},
		"allowed_cors_origins": []string{spaOrigin}})
	env.RegisterClient(map[string]any{"client_name": "Other", "redirect_uris": []string{"https://other.example/cb"},
		"token_endpoint_auth_method": "none", "allowed_cors_origins": []string{otherOrigin}})
	rp := env.NewRP(spa)
	rp.Conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	tok := rp.Login(t, latchtest.NewBrowser(t), []string{"openid", "offline_access"}, map[string]any{"user": "u1"})
	acao := func(r *http.Response) string { return r.Header.Get("Access-Control-Allow-Origin") }

	// Preflights: by origin, since they carry no client.
	for _, path := range []string{"/oauth2/token", "/oauth2/revoke", "/userinfo"} {
		pre := corsRequest(t, "OPTIONS", env.URL+path, spaOrigin, nil, map[string]string{
			"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, dpop"})
		if pre.StatusCode != http.StatusNoContent || acao(pre) != spaOrigin ||
			!strings.Contains(pre.Header.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "DPoP") {
			t.Errorf("%s preflight from %s: %d %v", path, spaOrigin, pre.StatusCode, pre.Header)
		}
		if pre := corsRequest(t, "OPTIONS", env.URL+path, evil, nil, map[string]string{"Access-Control-Request-Method": "POST"}); acao(pre) != "" || pre.StatusCode < 400 {
			t.Errorf("%s preflight from an unlisted origin: %d %v", path, pre.StatusCode, pre.Header)
		}
	}

	// Token requests: the identified client's origins only.
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {spa.ID}}
	if r := corsRequest(t, "POST", env.URL+"/oauth2/token", evil, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {spa.ID}}, nil); acao(r) != "" {
		t.Errorf("token from an unlisted origin: %v", r.Header)
	}
	if r := corsRequest(t, "POST", env.URL+"/oauth2/token", otherOrigin, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {spa.ID}}, nil); acao(r) != "" {
		t.Errorf("token for the SPA from the other client's origin: %v", r.Header)
	}
	r := corsRequest(t, "POST", env.URL+"/oauth2/token", spaOrigin, refresh, nil)
	if r.StatusCode != http.StatusOK || acao(r) != spaOrigin || !strings.Contains(r.Header.Get("Vary"), "Origin") {
		t.Errorf("token from the SPA's origin: %d %v", r.StatusCode, r.Header)
	}
	// An error is readable too, so the page can react to it.
	if r := corsRequest(t, "POST", env.URL+"/oauth2/token", spaOrigin, refresh, nil); r.StatusCode != http.StatusBadRequest || acao(r) != spaOrigin {
		t.Errorf("token error from the SPA's origin: %d %v", r.StatusCode, r.Header)
	}

	// Userinfo: the token's client decides.
	tok = rp.Login(t, latchtest.NewBrowser(t), []string{"openid"}, map[string]any{"user": "u1"})
	bearer := map[string]string{"Authorization": "Bearer " + tok.AccessToken}
	if r := corsRequest(t, "GET", env.URL+"/userinfo", spaOrigin, nil, bearer); r.StatusCode != http.StatusOK || acao(r) != spaOrigin {
		t.Errorf("userinfo from the SPA's origin: %d %v", r.StatusCode, r.Header)
	}
	if r := corsRequest(t, "GET", env.URL+"/userinfo", otherOrigin, nil, bearer); r.StatusCode != http.StatusOK || acao(r) != "" {
		t.Errorf("userinfo with the SPA's token from the other client's origin: %d %v", r.StatusCode, r.Header)
	}
	if r := corsRequest(t, "GET", env.URL+"/userinfo", evil, nil, bearer); acao(r) != "" {
		t.Errorf("userinfo from an unlisted origin: %v", r.Header)
	}
	// Revocation: like the token endpoint.
	if r := corsRequest(t, "POST", env.URL+"/oauth2/revoke", spaOrigin, url.Values{"token": {tok.AccessToken}, "client_id": {spa.ID}}, nil); r.StatusCode != http.StatusOK || acao(r) != spaOrigin {
		t.Errorf("revoke from the SPA's origin: %d %v", r.StatusCode, r.Header)
	}

	// Public documents: any origin.
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/.well-known/jwks.json"} {
		if r := corsRequest(t, "GET", env.URL+path, evil, nil, nil); acao(r) != "*" {
			t.Errorf("%s: Access-Control-Allow-Origin %q, want *", path, acao(r))
		}
	}
	// Never: authorize and /api, even from a registered origin.
	for _, tc := range []struct{ method, path string }{
		{"GET", "/oauth2/authorize?client_id=" + spa.ID}, {"OPTIONS", "/oauth2/authorize"},
		{"GET", "/api/clients"}, {"OPTIONS", "/api/clients"}, {"OPTIONS", "/api/auth_session/x"},
	} {
		r := corsRequest(t, tc.method, env.URL+tc.path, spaOrigin, nil, map[string]string{"X-API-Key": latchtest.APIKey, "Access-Control-Request-Method": "POST"})
		for h := range r.Header {
			if strings.HasPrefix(h, "Access-Control-") {
				t.Errorf("%s %s sent %s", tc.method, tc.path, h)
			}
		}
	}
}
