package stack

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/sdk/approval"
)

// browser follows redirects with a cookie jar, like a person's browser.
type browser struct {
	t  *testing.T
	hc *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, hc: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

func (b *browser) do(req *http.Request) (string, string) {
	b.t.Helper()
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.Request.URL.String(), string(body)
}

func (b *browser) get(u string) (string, string) {
	req, _ := http.NewRequest("GET", u, nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) (string, string) {
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// field pulls a hidden input's value out of a page.
func field(t *testing.T, body, name string) string {
	t.Helper()
	i := strings.Index(body, `name=`+name+` value="`)
	if i < 0 {
		t.Fatalf("no %s field in %s", name, body)
	}
	rest := body[i+len(`name=`+name+` value="`):]
	return rest[:strings.IndexByte(rest, '"')]
}

func start(t *testing.T) *Stack {
	s, err := Start(context.Background(), Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// The whole story over HTTP: sign in, approve (remembered), the API call
// with the access token, a silent second sign-in, the connected-apps page
// and revoking, a denial, and the host app's protections.
func TestStory(t *testing.T) {
	s := start(t)
	b := newBrowser(t)

	at, body := b.get(s.ThirdPartyURL + "/")
	if !strings.Contains(body, "Sign in with ExampleApp") {
		t.Fatalf("home: %s", body)
	}
	at, body = b.get(s.ThirdPartyURL + "/login")
	if !strings.HasPrefix(at, s.HostURL+"/login?next=") {
		t.Fatalf("not sent to the host app's login: %s", at)
	}
	next := field(t, body, "next")
	at, body = b.post(s.HostURL+"/login", url.Values{"username": {"alice"}, "password": {"wrong"}, "next": {next}})
	if !strings.Contains(body, "Wrong username or password") {
		t.Fatalf("bad password: %s", body)
	}
	at, body = b.post(s.HostURL+"/login", url.Values{"username": {"alice"}, "password": {"wonderland"}, "next": {next}})
	if !strings.HasPrefix(at, s.HostURL+"/oauth/approve?token=") {
		t.Fatalf("not on the consent page: %s", at)
	}
	for _, want := range []string{"PhotoPrints</span> wants to access your ExampleApp account", "<b>email</b>", "Signed in as <b>Alice Example</b>", `id=remember`} {
		if !strings.Contains(body, want) {
			t.Fatalf("consent page lacks %q:\n%s", want, body)
		}
	}
	token := field(t, body, "token")
	sess, err := mustClient(t, s).Session(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range sess.Scopes {
		if !strings.Contains(body, sc.Description) {
			t.Fatalf("consent page lacks the description of %s", sc.Name)
		}
	}
	if sess.RedirectHost != "" && !strings.Contains(body, "sent to <b>127.0.0.1</b>") {
		t.Fatal("consent page lacks the redirect host")
	}
	// A cross-site post of the decision is refused.
	req, _ := http.NewRequest("POST", s.HostURL+"/oauth/approve", strings.NewReader(url.Values{"token": {token}, "decision": {"approve"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if resp, err := b.hc.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site approve: %v %v", resp.StatusCode, err)
	}

	at, body = b.post(s.HostURL+"/oauth/approve", url.Values{"token": {token}, "decision": {"approve"}, "remember": {"on"}})
	if at != s.ThirdPartyURL+"/" || !strings.Contains(body, `Hello, <span id=name>Alice Example</span>`) {
		t.Fatalf("after approval at %s:\n%s", at, body)
	}
	if !strings.Contains(body, `&#34;username&#34;: &#34;alice&#34;`) || !strings.Contains(body, "alice@example.com") {
		t.Fatalf("the API call with the access token failed:\n%s", body)
	}

	// Signed out of the third-party app, a silent sign-in completes: the
	// decision was remembered and Latch knows this browser.
	b.post(s.ThirdPartyURL+"/logout", nil)
	at, body = b.get(s.ThirdPartyURL + "/login?prompt=none")
	if !strings.Contains(body, "Hello, <span id=name>Alice Example</span>") {
		t.Fatalf("silent sign-in at %s:\n%s", at, body)
	}

	// Signing out everywhere goes through Latch's end_session_endpoint
	// (RP-Initiated Logout) and back to the app: Latch's session is over,
	// so a silent sign-in needs a login again.
	at, body = b.post(s.ThirdPartyURL+"/logout", url.Values{"everywhere": {"1"}})
	if at != s.ThirdPartyURL+"/?state=signed-out" || !strings.Contains(body, "id=signin") {
		t.Fatalf("after signing out everywhere at %s:\n%s", at, body)
	}
	at, body = b.get(s.ThirdPartyURL + "/login?prompt=none")
	if !strings.Contains(body, "login_required") {
		t.Fatalf("silent sign-in after signing out everywhere at %s:\n%s", at, body)
	}
	// Signing in again goes past the host app's consent page.
	at, body = b.get(s.ThirdPartyURL + "/login")
	at, body = b.post(s.HostURL+"/oauth/approve", url.Values{"token": {field(t, body, "token")}, "decision": {"approve"}, "remember": {"on"}})
	if !strings.Contains(body, `Hello, <span id=name>Alice Example</span>`) {
		t.Fatalf("signing in again at %s:\n%s", at, body)
	}

	at, body = b.get(s.HostURL + "/connected")
	if !strings.Contains(body, `<b class=app-name>PhotoPrints</b>`) {
		t.Fatalf("connected apps: %s", body)
	}
	at, body = b.post(s.HostURL+"/connected/revoke", url.Values{"client_id": {s.ClientID}})
	if !strings.Contains(body, "No app has access") {
		t.Fatalf("after revoking: %s", body)
	}

	// Deny: the third-party app hears access_denied.
	b.post(s.ThirdPartyURL+"/logout", nil)
	at, body = b.get(s.ThirdPartyURL + "/login")
	token = field(t, body, "token")
	at, body = b.post(s.HostURL+"/oauth/approve", url.Values{"token": {token}, "decision": {"deny"}})
	if !strings.Contains(body, "access_denied") || !strings.Contains(body, "Alice Example declined the request") {
		t.Fatalf("deny at %s:\n%s", at, body)
	}
	// The same consent page again: already answered.
	at, body = b.get(s.HostURL + "/oauth/approve?token=" + url.QueryEscape(token))
	if !strings.Contains(body, "expired") && !strings.Contains(body, "already answered") {
		t.Fatalf("a decided session: %s", body)
	}

	// Host app logout ends the Latch session too (once Latch serves
	// DELETE /api/users/{user}/sessions): the next silent sign-in fails.
	b.post(s.HostURL+"/logout", nil)
	at, body = b.get(s.HostURL + "/connected")
	if !strings.HasPrefix(at, s.HostURL+"/login") {
		t.Fatalf("still signed in to the host app: %s", at)
	}
	if err := mustClient(t, s).EndSessions(context.Background(), "nobody"); isMissingRoute(err) {
		t.Logf("Latch does not serve DELETE /api/users/{user}/sessions yet; skipping the silent-sign-in check after logout")
		return
	}
	at, body = b.get(s.ThirdPartyURL + "/login?prompt=none")
	if !strings.Contains(body, "login_required") {
		t.Fatalf("silent sign-in after logout at %s:\n%s", at, body)
	}
}

func mustClient(t *testing.T, s *Stack) *approval.Client {
	c, err := approval.New(approval.Config{Issuer: s.LatchURL, APIKey: s.APIKey})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func isMissingRoute(err error) bool {
	var e *approval.Error
	return errors.As(err, &e) && (e.Status == http.StatusMethodNotAllowed ||
		e.Status == http.StatusNotFound && strings.EqualFold(e.Description, "not found"))
}

// The host app's API refuses a request without a token with a challenge
// that points at its RFC 9728 metadata, and serves that metadata.
func TestHostAPIChallenge(t *testing.T) {
	s := start(t)
	resp, err := http.Get(s.HostURL + "/api/me")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := `Bearer resource_metadata="` + s.HostURL + `/.well-known/oauth-protected-resource/api"`
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp, err = http.Get(s.HostURL + "/.well-known/oauth-protected-resource/api")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"resource":"`+s.HostURL+`/api"`) {
		t.Fatalf("%s", body)
	}
}
