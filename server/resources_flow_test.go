package server_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage/pgtest"
)

const (
	resMCP = "https://mcp.example.com/mcp"
	resAPI = "https://api.example.com/"
)

// withResources configures resources the way LATCH_RESOURCES and the file
// would, plus the default resource.
func withResources(def string) func(*config.Config) {
	return func(c *config.Config) {
		withScopes("api.read=Read the API;files=Your files")(c)
		c.Resources = []config.Resource{
			{URI: resMCP, Name: "Example MCP"},
			{URI: resAPI, Name: "Example API", Scopes: []string{"api.read"}},
		}
		c.DefaultResource = def
	}
}

func bothDatabases(t *testing.T, run func(t *testing.T, dsn string)) {
	t.Run("SQLite", func(t *testing.T) { run(t, "") })
	t.Run("Postgres", func(t *testing.T) { run(t, pgtest.DSN(t)) })
}

// audOf reads an access token's aud as a list.
func audOf(t *testing.T, access string) []string {
	t.Helper()
	_, claims := jwtParts(t, access)
	switch v := claims["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, a := range v {
			out = append(out, a.(string))
		}
		return out
	}
	t.Fatalf("aud %v", claims["aud"])
	return nil
}

func wantAud(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: aud %v, want %v", what, got, want)
	}
}

// TestResourceIndicators: RFC 8707 resource at authorization, PAR and
// every grant; unknown resources are invalid_target; a token request
// narrows within the authorised resources, and refreshing keeps the whole
// grant; introspection by a resource server reports aud (SPEC §6).
func TestResourceIndicators(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dsn string) {
		env := latchtest.Start(t, latchtest.Options{DSN: dsn, Configure: withResources("")})
		c := env.WebClient("client_secret_basic")
		r := env.NewRP(c)
		b := latchtest.NewBrowser(t)
		scopes := []string{"openid", "offline_access"}

		// Two resources at authorization: the consent data names them.
		authURL, verifier := r.AuthURL(scopes, oauth2.SetAuthURLParam("resource", resMCP))
		authURL += "&resource=" + url.QueryEscape(resAPI)
		id := env.StartAuthorize(b, authURL)
		status, view := env.API("GET", "/api/auth_session/"+id, nil)
		if status != 200 || !slices.Equal(toStrings(view["resources"]), []string{resMCP, resAPI}) {
			t.Fatalf("session read: %d resources %v", status, view["resources"])
		}
		loc := env.Resume(b, env.Approve(id, map[string]any{"user": "alice"}))
		tok := r.Exchange(t, loc, verifier)
		wantAud(t, "code exchange without resource", audOf(t, tok.AccessToken), []string{resMCP, resAPI})

		// Refresh narrowing to one, then to the other: the grant keeps both.
		for _, res := range []string{resMCP, resAPI} {
			resp, out := postForm(t, env.URL+"/oauth2/token", url.Values{"grant_type": {"refresh_token"},
				"refresh_token": {tok.RefreshToken}, "resource": {res}}, c.ID, c.Secret)
			if resp.StatusCode != 200 {
				t.Fatalf("refresh for %s: %d %v", res, resp.StatusCode, out)
			}
			tok = &oauth2.Token{AccessToken: out["access_token"].(string), RefreshToken: out["refresh_token"].(string)}
			wantAud(t, "refresh narrowed to "+res, audOf(t, tok.AccessToken), []string{res})
		}
		// Introspection by a resource server (API key) reports aud.
		if in := introspect(t, env, tok.AccessToken, "", ""); in["active"] != true || !slices.Equal(toStrings(in["aud"]), []string{resAPI}) {
			t.Fatalf("introspection: %v", in)
		}
		// Unknown, and compared character for character.
		for _, bad := range []string{"https://other.example.com/", resMCP + "/", strings.ToUpper(resAPI)} {
			resp, out := postForm(t, env.URL+"/oauth2/token", url.Values{"grant_type": {"refresh_token"},
				"refresh_token": {tok.RefreshToken}, "resource": {bad}}, c.ID, c.Secret)
			if resp.StatusCode != 400 || out["error"] != "invalid_target" {
				t.Fatalf("refresh for %s: %d %v", bad, resp.StatusCode, out)
			}
		}

		// Code exchange narrowing; a registered resource that was not
		// authorised is refused.
		authURL, verifier = r.AuthURL(scopes, oauth2.SetAuthURLParam("resource", resMCP))
		loc = env.Authorize(b, authURL, map[string]any{"user": "alice"})
		form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
			"code_verifier": {verifier}, "redirect_uri": {c.RedirectURIs[0]}, "resource": {resAPI}}
		if resp, out := postForm(t, env.URL+"/oauth2/token", form, c.ID, c.Secret); resp.StatusCode != 400 || out["error"] != "invalid_target" {
			t.Fatalf("code exchange for an unauthorised resource: %d %v", resp.StatusCode, out)
		}
		authURL, verifier = r.AuthURL(scopes, oauth2.SetAuthURLParam("resource", resMCP))
		authURL += "&resource=" + url.QueryEscape(resAPI)
		loc = env.Authorize(b, authURL, map[string]any{"user": "alice"})
		form.Set("code", loc.Query().Get("code"))
		form.Set("code_verifier", verifier)
		form.Set("resource", resMCP)
		resp, out := postForm(t, env.URL+"/oauth2/token", form, c.ID, c.Secret)
		if resp.StatusCode != 200 {
			t.Fatalf("code exchange narrowed: %d %v", resp.StatusCode, out)
		}
		wantAud(t, "code exchange narrowed", audOf(t, out["access_token"].(string)), []string{resMCP})
		resp, out = postForm(t, env.URL+"/oauth2/token", url.Values{"grant_type": {"refresh_token"},
			"refresh_token": {out["refresh_token"].(string)}}, c.ID, c.Secret)
		if resp.StatusCode != 200 {
			t.Fatalf("refresh after narrowing: %d %v", resp.StatusCode, out)
		}
		wantAud(t, "refresh without resource after a narrowed exchange", audOf(t, out["access_token"].(string)), []string{resMCP, resAPI})

		// An unknown resource at authorization is invalid_target, sent to
		// the (validated) redirect URI.
		authURL, _ = r.AuthURL(scopes, oauth2.SetAuthURLParam("resource", resMCP+"/"))
		br, body := b.Get(authURL)
		if br.StatusCode != http.StatusSeeOther {
			t.Fatalf("authorize with unknown resource: %d %s", br.StatusCode, body)
		}
		if q := latchtest.Location(t, br).Query(); q.Get("error") != "invalid_target" || q.Get("iss") != env.URL {
			t.Fatalf("authorize with unknown resource: %v", q)
		}
		// A scope the resource does not accept.
		authURL, _ = r.AuthURL([]string{"openid", "files"}, oauth2.SetAuthURLParam("resource", resAPI))
		br, _ = b.Get(authURL)
		if q := latchtest.Location(t, br).Query(); q.Get("error") != "invalid_scope" {
			t.Fatalf("authorize with a scope the resource refuses: %v", q)
		}

		// PAR: refused when unknown, honoured when known.
		par := func(res string) (*http.Response, map[string]any) {
			challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
			return postForm(t, env.URL+"/oauth2/par", url.Values{"response_type": {"code"}, "client_id": {c.ID},
				"redirect_uri": {c.RedirectURIs[0]}, "scope": {"openid"}, "code_challenge": {challenge},
				"code_challenge_method": {"S256"}, "state": {"state-0123456789"}, "resource": {res}}, c.ID, c.Secret)
		}
		if resp, out := par("https://unknown.example.com/"); resp.StatusCode != 400 || out["error"] != "invalid_target" {
			t.Fatalf("PAR with unknown resource: %d %v", resp.StatusCode, out)
		}
		if resp, out := par(resAPI); resp.StatusCode != 201 {
			t.Fatalf("PAR with a known resource: %d %v", resp.StatusCode, out)
		}

		// client_credentials.
		m := env.RegisterClient(map[string]any{"client_name": "Machine", "grant_types": []string{"client_credentials"},
			"response_types": []string{}, "scope": "api.read files"})
		cc := func(res ...string) (*http.Response, map[string]any) {
			return postForm(t, env.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"api.read"}, "resource": res}, m.ID, m.Secret)
		}
		resp, out = cc(resAPI)
		if resp.StatusCode != 200 {
			t.Fatalf("client_credentials with resource: %d %v", resp.StatusCode, out)
		}
		wantAud(t, "client_credentials", audOf(t, out["access_token"].(string)), []string{resAPI})
		if resp, out := cc("https://unknown.example.com/"); resp.StatusCode != 400 || out["error"] != "invalid_target" {
			t.Fatalf("client_credentials with unknown resource: %d %v", resp.StatusCode, out)
		}
		resp, out = cc()
		if resp.StatusCode != 200 {
			t.Fatalf("client_credentials without resource: %d %v", resp.StatusCode, out)
		}
		wantAud(t, "client_credentials without resource or default", audOf(t, out["access_token"].(string)), []string{env.URL})

		// A client's audience must be a registered resource or the issuer.
		for aud, want := range map[string]int{resMCP: 201, env.URL: 201, "https://other.example.com/": 400} {
			status, out := env.API("POST", "/api/clients", map[string]any{"client_name": "Aud", "redirect_uris": []string{"https://client.example/cb"}, "audience": []string{aud}})
			if status != want {
				t.Fatalf("client with audience %s: %d %v", aud, status, out)
			}
		}
	})
}

// TestDefaultResource: with LATCH_DEFAULT_RESOURCE, requests naming no
// resource get it, at every grant.
func TestDefaultResource(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dsn string) {
		env := latchtest.Start(t, latchtest.Options{DSN: dsn, Configure: withResources(resMCP)})
		c := env.WebClient("client_secret_basic")
		r := env.NewRP(c)
		b := latchtest.NewBrowser(t)
		authURL, verifier := r.AuthURL([]string{"openid", "offline_access"})
		id := env.StartAuthorize(b, authURL)
		if _, view := env.API("GET", "/api/auth_session/"+id, nil); !slices.Equal(toStrings(view["resources"]), []string{resMCP}) {
			t.Fatalf("session read resources %v", view["resources"])
		}
		tok := r.Exchange(t, env.Resume(b, env.Approve(id, map[string]any{"user": "bob"})), verifier)
		wantAud(t, "default at authorization", audOf(t, tok.AccessToken), []string{resMCP})
		next, err := r.Refresh(tok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		wantAud(t, "default after refresh", audOf(t, next.AccessToken), []string{resMCP})

		m := env.RegisterClient(map[string]any{"client_name": "Machine", "grant_types": []string{"client_credentials"}, "response_types": []string{}, "scope": "files"})
		resp, out := postForm(t, env.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, m.ID, m.Secret)
		if resp.StatusCode != 200 {
			t.Fatalf("client_credentials: %d %v", resp.StatusCode, out)
		}
		wantAud(t, "default at client_credentials", audOf(t, out["access_token"].(string)), []string{resMCP})
	})
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := []string{}
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestDevPageShowsResources: the development consent page names the
// resource servers the tokens will be for.
func TestDevPageShowsResources(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{DevPage: true, Configure: withResources("")})
	r := env.NewRP(env.WebClient("client_secret_basic"))
	b := latchtest.NewBrowser(t)
	authURL, _ := r.AuthURL([]string{"openid"}, oauth2.SetAuthURLParam("resource", resMCP))
	id := env.StartAuthorize(b, authURL)
	resp, page := b.Get(env.URL + "/dev/consent?token=" + url.QueryEscape(id))
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Example MCP") || !strings.Contains(string(page), resMCP) {
		t.Fatalf("dev page: %d\n%s", resp.StatusCode, page)
	}
}
