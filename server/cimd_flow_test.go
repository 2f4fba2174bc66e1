package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage/conformance"
)

// docServer serves client metadata documents on loopback and counts
// fetches per path.
type docServer struct {
	*httptest.Server
	mu      sync.Mutex
	docs    map[string]docAnswer
	fetches map[string]int
}

type docAnswer struct {
	status int
	body   string
	header map[string]string
}

func newDocServer(t *testing.T) *docServer {
	d := &docServer{docs: map[string]docAnswer{}, fetches: map[string]int{}}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		a, ok := d.docs[r.URL.Path]
		d.fetches[r.URL.Path]++
		d.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		if a.status == 0 {
			a.status = 200
		}
		w.WriteHeader(a.status)
		w.Write([]byte(a.body))
	}))
	t.Cleanup(d.Close)
	return d
}

// serve publishes doc at path (its client_id, unless set, is its URL) and
// returns that URL.
func (d *docServer) serve(path string, doc map[string]any, header map[string]string) string {
	id := d.URL + path
	if _, ok := doc["client_id"]; !ok {
		doc["client_id"] = id
	}
	b, _ := json.Marshal(doc)
	d.mu.Lock()
	d.docs[path] = docAnswer{body: string(b), header: header}
	d.mu.Unlock()
	return id
}

func (d *docServer) raw(path string, a docAnswer) string {
	d.mu.Lock()
	d.docs[path] = a
	d.mu.Unlock()
	return d.URL + path
}

func (d *docServer) count(path string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fetches[path]
}

func agentDoc() map[string]any {
	return map[string]any{"client_name": "Example Agent", "redirect_uris": []string{"http://127.0.0.1/callback"},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"}}
}

func withDocuments(extra func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		c.Outbound.AllowLoopback = true
		if extra != nil {
			extra(c)
		}
	}
}

// documentAuthURL is an authorization request from a document client
// listening on a loopback port.
func documentAuthURL(env *latchtest.Env, clientID, redirect string) (string, string) {
	verifier := oauth2.GenerateVerifier()
	conf := oauth2.Config{ClientID: clientID, RedirectURL: redirect, Scopes: []string{"openid", "offline_access"},
		Endpoint: oauth2.Endpoint{AuthURL: env.URL + "/oauth2/authorize", TokenURL: env.URL + "/oauth2/token"}}
	return conf.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier)), verifier
}

// TestClientIDMetadataDocument: an https (here: loopback, allowed for
// tests) client_id is fetched and used as the client at authorize, token,
// refresh, revocation and introspection; the consent data marks it
// (SPEC §6).
func TestClientIDMetadataDocument(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dsn string) {
		docs := newDocServer(t)
		env := latchtest.Start(t, latchtest.Options{DSN: dsn, Configure: withDocuments(nil)})
		id := docs.serve("/agent.json", agentDoc(), nil)
		b := latchtest.NewBrowser(t)
		redirect := "http://127.0.0.1:49152/callback"
		authURL, verifier := documentAuthURL(env, id, redirect)
		sess := env.StartAuthorize(b, authURL)
		status, view := env.API("GET", "/api/auth_session/"+sess, nil)
		client, _ := view["client"].(map[string]any)
		if status != 200 || client["client_id"] != id || client["client_id_document"] != true ||
			client["client_id_document_host"] != "127.0.0.1" || client["client_name"] != "Example Agent" {
			t.Fatalf("session read: %d %v", status, view)
		}
		loc := env.Resume(b, env.Approve(sess, map[string]any{"user": "alice"}))
		if !strings.HasPrefix(loc.String(), redirect+"?") {
			t.Fatalf("redirected to %s", loc)
		}
		resp, tok := postForm(t, env.URL+"/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {id},
			"code": {loc.Query().Get("code")}, "code_verifier": {verifier}, "redirect_uri": {redirect}}, "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("token: %d %v", resp.StatusCode, tok)
		}
		if in := introspect(t, env, tok["access_token"].(string), "", ""); in["active"] != true || in["client_id"] != id {
			t.Fatalf("introspection: %v", in)
		}
		resp, next := postForm(t, env.URL+"/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {id},
			"refresh_token": {tok["refresh_token"].(string)}}, "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("refresh: %d %v", resp.StatusCode, next)
		}
		resp, _ = postForm(t, env.URL+"/oauth2/revoke", url.Values{"client_id": {id}, "token": {next["refresh_token"].(string)}}, "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("revoke: %d", resp.StatusCode)
		}
		if in := introspect(t, env, next["access_token"].(string), "", ""); in["active"] != false {
			t.Fatalf("introspection after revoking the family: %v", in)
		}
		if n := docs.count("/agent.json"); n != 1 {
			t.Errorf("document fetched %d times, want 1 (cached)", n)
		}

		// PAR from the document client.
		challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
		resp, out := postForm(t, env.URL+"/oauth2/par", url.Values{"response_type": {"code"}, "client_id": {id},
			"redirect_uri": {redirect}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {"state-0123456789"}}, "", "")
		if resp.StatusCode != 201 {
			t.Fatalf("PAR: %d %v", resp.StatusCode, out)
		}
	})
}

// TestClientIDMetadataDocumentRefusals: every SPEC §6 rule, each refused
// with a 400 shown to the browser, never a redirect.
func TestClientIDMetadataDocumentRefusals(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dsn string) {
		docs := newDocServer(t)
		env := latchtest.Start(t, latchtest.Options{DSN: dsn, Configure: withDocuments(nil)})
		with := func(k string, v any) map[string]any {
			d := agentDoc()
			if v == nil {
				delete(d, k)
			} else {
				d[k] = v
			}
			return d
		}
		cases := map[string]string{
			"client_id differs":        docs.serve("/other-id.json", with("client_id", docs.URL+"/someone-else.json"), nil),
			"client_id with a slash":   docs.serve("/slash.json", with("client_id", docs.URL+"/slash.json/"), nil),
			"no client_name":           docs.serve("/no-name.json", with("client_name", nil), nil),
			"no redirect_uris":         docs.serve("/no-redirects.json", with("redirect_uris", nil), nil),
			"client_secret_basic":      docs.serve("/secret-method.json", with("token_endpoint_auth_method", "client_secret_basic"), nil),
			"client_secret_post":       docs.serve("/secret-post.json", with("token_endpoint_auth_method", "client_secret_post"), nil),
			"a client_secret":          docs.serve("/secret.json", with("client_secret", "s3cret"), nil),
			"private_key_jwt, no keys": docs.serve("/pkjwt.json", with("token_endpoint_auth_method", "private_key_jwt"), nil),
			"client_credentials":       docs.serve("/cc.json", with("grant_types", []string{"client_credentials"}), nil),
			"redirect not listed":      docs.serve("/elsewhere.json", with("redirect_uris", []string{"https://agent.example/cb"}), nil),
			"not found":                docs.URL + "/missing.json",
			"a redirect":               docs.raw("/moved.json", docAnswer{status: 302, header: map[string]string{"Location": "/agent.json"}}),
			"not JSON":                 docs.raw("/html.json", docAnswer{body: "<html>hello</html>"}),
			"larger than 5 KiB":        docs.serve("/big.json", with("client_uri", "https://agent.example/"+strings.Repeat("a", 5<<10)), nil),
			"no path":                  docs.URL,
			"a fragment":               docs.URL + "/agent.json#x",
		}
		for name, id := range cases {
			authURL, _ := documentAuthURL(env, id, "http://127.0.0.1:49152/callback")
			resp, body := latchtest.NewBrowser(t).Get(authURL)
			var out map[string]any
			json.Unmarshal(body, &out)
			if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || out["error"] != "invalid_client" {
				t.Errorf("%s: %d %s", name, resp.StatusCode, body)
			}
		}
		// Accepted: private_key_jwt with keys, and no method at all (public).
		for _, doc := range []map[string]any{
			with("token_endpoint_auth_method", "private_key_jwt"),
			with("token_endpoint_auth_method", nil),
		} {
			path := "/ok-" + secretish(doc) + ".json"
			if doc["token_endpoint_auth_method"] == "private_key_jwt" {
				var jwks map[string]any
				json.Unmarshal([]byte(newAssertionKey(t).jwks(t)), &jwks)
				doc["jwks"] = jwks
			}
			authURL, _ := documentAuthURL(env, docs.serve(path, doc, nil), "http://127.0.0.1:49152/callback")
			env.StartAuthorize(latchtest.NewBrowser(t), authURL)
		}
	})
}

func secretish(doc map[string]any) string {
	if m, ok := doc["token_endpoint_auth_method"].(string); ok {
		return m
	}
	return "default"
}

// TestClientIDMetadataDocumentCache: documents live as long as their
// caching headers say, within the configured bounds; refusals are
// remembered briefly.
func TestClientIDMetadataDocumentCache(t *testing.T) {
	docs := newDocServer(t)
	clock := conformance.NewClockAt(time.Now())
	env := latchtest.Start(t, latchtest.Options{Now: clock.Now, Configure: withDocuments(func(c *config.Config) {
		c.CIMD.MinCache, c.CIMD.MaxCache, c.CIMD.NegativeCache = 5*time.Minute, time.Hour, 2*time.Minute
	})})
	redirect := "http://127.0.0.1:49152/callback"
	start := func(id string) int {
		authURL, _ := documentAuthURL(env, id, redirect)
		resp, _ := latchtest.NewBrowser(t).Get(authURL)
		return resp.StatusCode
	}
	// max-age=1200: used for 20 minutes, then fetched again.
	long := docs.serve("/long.json", agentDoc(), map[string]string{"Cache-Control": "public, max-age=1200"})
	start(long)
	clock.Advance(15 * time.Minute)
	start(long)
	if n := docs.count("/long.json"); n != 1 {
		t.Fatalf("max-age=1200 after 15 min: %d fetches, want 1", n)
	}
	clock.Advance(6 * time.Minute)
	start(long)
	if n := docs.count("/long.json"); n != 2 {
		t.Fatalf("max-age=1200 after 21 min: %d fetches, want 2", n)
	}
	// max-age beyond max_cache is cut to it.
	huge := docs.serve("/huge.json", agentDoc(), map[string]string{"Cache-Control": "max-age=86400"})
	start(huge)
	clock.Advance(61 * time.Minute)
	start(huge)
	if n := docs.count("/huge.json"); n != 2 {
		t.Fatalf("max-age=86400 with max_cache 1h after 61 min: %d fetches, want 2", n)
	}
	// no-store is raised to min_cache.
	nostore := docs.serve("/nostore.json", agentDoc(), map[string]string{"Cache-Control": "no-store"})
	start(nostore)
	clock.Advance(4 * time.Minute)
	start(nostore)
	if n := docs.count("/nostore.json"); n != 1 {
		t.Fatalf("no-store within min_cache: %d fetches, want 1", n)
	}
	clock.Advance(2 * time.Minute)
	start(nostore)
	if n := docs.count("/nostore.json"); n != 2 {
		t.Fatalf("no-store after min_cache: %d fetches, want 2", n)
	}
	// A refusal is remembered for negative_cache, then retried.
	bad := agentDoc()
	delete(bad, "client_name")
	fixed := docs.serve("/fixed.json", bad, nil)
	if s := start(fixed); s != 400 {
		t.Fatalf("refused document: %d", s)
	}
	docs.serve("/fixed.json", agentDoc(), nil)
	clock.Advance(time.Minute + 30*time.Second)
	if s := start(fixed); s != 400 {
		t.Fatalf("fixed document within negative_cache: %d, want still 400", s)
	}
	clock.Advance(time.Minute)
	if s := start(fixed); s != http.StatusSeeOther {
		t.Fatalf("fixed document after negative_cache: %d, want 303", s)
	}
}

// TestClientIDMetadataDocumentPolicy: operators restrict hosts, or turn
// documents off (then discovery stops advertising them).
func TestClientIDMetadataDocumentPolicy(t *testing.T) {
	docs := newDocServer(t)
	redirect := "http://127.0.0.1:49152/callback"
	for name, tc := range map[string]struct {
		configure func(*config.Config)
		accepted  bool
	}{
		"denied host":             {func(c *config.Config) { c.CIMD.DeniedHosts = "agents.example.com, 127.0.0.1" }, false},
		"not an allowed host":     {func(c *config.Config) { c.CIMD.AllowedHosts = "*.example.com" }, false},
		"allowed host":            {func(c *config.Config) { c.CIMD.AllowedHosts = "agents.example.com,127.0.0.1" }, true},
		"deny wins over allow":    {func(c *config.Config) { c.CIMD.AllowedHosts, c.CIMD.DeniedHosts = "127.0.0.1", "127.0.0.1" }, false},
		"documents off":           {func(c *config.Config) { c.ClientMetadataDocuments = "off" }, false},
		"no policy (the default)": {nil, true},
	} {
		t.Run(name, func(t *testing.T) {
			env := latchtest.Start(t, latchtest.Options{Configure: withDocuments(tc.configure)})
			id := docs.serve("/policy.json", agentDoc(), nil)
			authURL, _ := documentAuthURL(env, id, redirect)
			resp, body := latchtest.NewBrowser(t).Get(authURL)
			if tc.accepted != (resp.StatusCode == http.StatusSeeOther) || !tc.accepted && resp.StatusCode != 400 {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			_, disc := latchtest.NewBrowser(t).Get(env.URL + "/.well-known/oauth-authorization-server")
			var meta map[string]any
			json.Unmarshal(disc, &meta)
			if (meta["client_id_metadata_document_supported"] == true) != (env.Config.ClientMetadataDocuments == "on") {
				t.Fatalf("discovery says %v with documents %s", meta["client_id_metadata_document_supported"], env.Config.ClientMetadataDocuments)
			}
		})
	}
}

// TestClientIDMetadataDocumentGrantsPerInstallation: a remembered
// authorization of a document client holds for the redirect URI it was
// given at, never for another installation of the same agent.
func TestClientIDMetadataDocumentGrantsPerInstallation(t *testing.T) {
	bothDatabases(t, func(t *testing.T, dsn string) {
		docs := newDocServer(t)
		env := latchtest.Start(t, latchtest.Options{DSN: dsn, Configure: withDocuments(nil)})
		id := docs.serve("/agent.json", agentDoc(), nil)
		b := latchtest.NewBrowser(t)
		first, second := "http://127.0.0.1:50001/callback", "http://127.0.0.1:50002/callback"
		authURL, _ := documentAuthURL(env, id, first)
		env.Authorize(b, authURL, map[string]any{"user": "alice", "remember": true})
		silent := func(redirect string) url.Values {
			u, _ := documentAuthURL(env, id, redirect)
			resp, body := b.Get(u + "&prompt=none")
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("prompt=none: %d %s", resp.StatusCode, body)
			}
			return latchtest.Location(t, resp).Query()
		}
		if q := silent(first); q.Get("code") == "" {
			t.Fatalf("same installation, prompt=none: %v", q)
		}
		if q := silent(second); q.Get("error") != "consent_required" {
			t.Fatalf("other installation, prompt=none: %v", q)
		}
	})
}
