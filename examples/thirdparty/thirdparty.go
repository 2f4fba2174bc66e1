// Package thirdparty is the example third-party app: "Sign in with
// ExampleApp" through Latch, using only standard client libraries
// (github.com/coreos/go-oidc and golang.org/x/oauth2). It shows the ID
// token's claims and calls the host app's API with the access token, kept
// fresh by sdk/tokenagent and handed to x/oauth2 through TokenSource.
package thirdparty

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchhq/latch/sdk/tokenagent"
)

// Config wires the app.
type Config struct {
	// PublicURL is where browsers reach the app (no trailing slash); its
	// /callback must be a registered redirect URI.
	PublicURL string
	// Issuer is Latch; ClientID and ClientSecret the app's registration.
	Issuer, ClientID, ClientSecret string
	// Provider names the host app on the button ("ExampleApp").
	Provider string
	// API is the host app's API base URL, and also the resource the access
	// token is asked for.
	API string
	Log *slog.Logger
}

// App is the third-party app's HTTP handler.
type App struct {
	cfg      Config
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	endURL   string
	mux      *http.ServeMux

	mu       sync.Mutex
	sessions map[string]*session
	pending  map[string]pending
}

type session struct {
	claims  map[string]any
	idToken string
	agent   *tokenagent.Agent
}

type pending struct {
	nonce, verifier string
	expires         time.Time
}

// New discovers Latch and builds the app.
func New(ctx context.Context, cfg Config) (*App, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Provider == "" {
		cfg.Provider = "ExampleApp"
	}
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", cfg.Issuer, err)
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = p.Claims(&extra)
	a := &App{cfg: cfg, endURL: extra.EndSession, sessions: map[string]*session{}, pending: map[string]pending{},
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: cfg.PublicURL + "/callback", Scopes: []string{oidc.ScopeOpenID, "profile", "email", "offline_access"}},
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("GET /callback", a.callback)
	mux.HandleFunc("POST /logout", a.logout)
	a.mux = mux
	return a, nil
}

// RedirectURI is the URI to register for this app.
func (a *App) RedirectURI() string { return a.oauth.RedirectURL }

func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Frame-Options", "DENY")
	a.mux.ServeHTTP(w, r)
}

const cookieName = "thirdparty_session"

func (a *App) current(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sessions[c.Value]
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// login starts the code flow with PKCE, a nonce, and the host app's API as
// the resource (RFC 8707; audience for servers that predate it).
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	state, nonce, verifier := random(), random(), oauth2.GenerateVerifier()
	a.mu.Lock()
	now := time.Now()
	for k, p := range a.pending {
		if now.After(p.expires) {
			delete(a.pending, k)
		}
	}
	a.pending[state] = pending{nonce: nonce, verifier: verifier, expires: now.Add(10 * time.Minute)}
	a.mu.Unlock()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce),
		oauth2.SetAuthURLParam("resource", a.cfg.API), oauth2.SetAuthURLParam("audience", a.cfg.API)}
	if r.URL.Query().Get("prompt") == "none" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "none"))
	}
	// The state also goes in a cookie: only the browser that started the
	// flow may finish it.
	http.SetCookie(w, &http.Cookie{Name: "thirdparty_state", Value: state, Path: "/callback", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 600})
	http.Redirect(w, r, a.oauth.AuthCodeURL(state, opts...), http.StatusSeeOther)
}

func (a *App) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, err := r.Cookie("thirdparty_state")
	if err != nil || c.Value != q.Get("state") {
		a.fail(w, http.StatusBadRequest, "This sign-in was not started here (state mismatch).", "")
		return
	}
	a.mu.Lock()
	p, ok := a.pending[q.Get("state")]
	delete(a.pending, q.Get("state"))
	a.mu.Unlock()
	if !ok {
		a.fail(w, http.StatusBadRequest, "This sign-in expired; please try again.", "")
		return
	}
	if iss := q.Get("iss"); iss != "" && iss != a.cfg.Issuer {
		a.fail(w, http.StatusBadRequest, "The answer came from another issuer.", "")
		return
	}
	if e := q.Get("error"); e != "" {
		a.fail(w, http.StatusOK, "Sign-in did not complete: "+e, q.Get("error_description"))
		return
	}
	tok, err := a.oauth.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		a.cfg.Log.Error("code exchange failed", "err", err)
		a.fail(w, http.StatusBadGateway, "Could not complete sign-in.", "")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := a.verifier.Verify(r.Context(), raw)
	if err != nil || idt.Nonce != p.nonce {
		a.cfg.Log.Error("ID token refused", "err", err)
		a.fail(w, http.StatusBadGateway, "The sign-in answer did not verify.", "")
		return
	}
	claims := map[string]any{}
	_ = idt.Claims(&claims)
	agent, err := tokenagent.New(r.Context(), tokenagent.Config{
		TokenURL: a.oauth.Endpoint.TokenURL, ClientID: a.cfg.ClientID, ClientSecret: a.cfg.ClientSecret,
		Params: url.Values{"resource": {a.cfg.API}, "audience": {a.cfg.API}},
	}, &tokenagent.Token{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken, IDToken: raw, Expiry: tok.Expiry})
	if err != nil {
		a.fail(w, http.StatusInternalServerError, "Could not start the session.", "")
		return
	}
	id := random()
	a.mu.Lock()
	a.sessions[id] = &session{claims: claims, idToken: raw, agent: agent}
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// TokenSource adapts a token agent to golang.org/x/oauth2, so any
// x/oauth2-based client (oauth2.NewClient, Google's API libraries...)
// uses the agent's serialized, never-reusing refresh.
type TokenSource struct{ Agent *tokenagent.Agent }

var _ oauth2.TokenSource = TokenSource{}

// Token implements oauth2.TokenSource.
func (s TokenSource) Token() (*oauth2.Token, error) {
	t, err := s.Agent.Token()
	if err != nil {
		return nil, err
	}
	// RefreshToken stays empty: x/oauth2 must never refresh by itself.
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.Type(), Expiry: t.Expiry}, nil
}

// callAPI fetches the user's profile from the host app's API.
func (a *App) callAPI(ctx context.Context, s *session) (string, error) {
	hc := oauth2.NewClient(ctx, TokenSource{Agent: s.agent})
	hc.Timeout = 10 * time.Second
	resp, err := hc.Get(a.cfg.API + "/me")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("the API answered %d: %s", resp.StatusCode, body)
	}
	var pretty map[string]any
	if json.Unmarshal(body, &pretty) == nil {
		b, _ := json.MarshalIndent(pretty, "", "  ")
		return string(b), nil
	}
	return string(body), nil
}

type claim struct{ Name, Value string }

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	s := a.current(r)
	data := map[string]any{"Provider": a.cfg.Provider}
	if s != nil {
		var cs []claim
		for k, v := range s.claims {
			b, _ := json.Marshal(v)
			cs = append(cs, claim{k, string(b)})
		}
		sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
		data["Claims"], data["Name"] = cs, s.claims["name"]
		if out, err := a.callAPI(r.Context(), s); err != nil {
			data["APIError"] = err.Error()
		} else {
			data["API"] = out
		}
	}
	render(w, homeTmpl, data)
}

// logout ends the local session. With everywhere=1 it then signs out of
// the provider too (RP-Initiated Logout, when the provider offers it),
// which brings the browser back to PostLogoutRedirectURI.
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	s := a.current(r)
	if c, err := r.Cookie(cookieName); err == nil {
		a.mu.Lock()
		delete(a.sessions, c.Value)
		a.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1})
	if s != nil && a.endURL != "" && r.PostFormValue("everywhere") == "1" {
		q := url.Values{"id_token_hint": {s.idToken}, "client_id": {a.cfg.ClientID},
			"post_logout_redirect_uri": {a.PostLogoutRedirectURI()}, "state": {"signed-out"}}
		http.Redirect(w, r, a.endURL+"?"+q.Encode(), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// PostLogoutRedirectURI is where the provider sends the browser back after
// signing out everywhere; register it as a post_logout_redirect_uri.
func (a *App) PostLogoutRedirectURI() string { return a.cfg.PublicURL + "/" }

func (a *App) fail(w http.ResponseWriter, status int, msg, detail string) {
	w.WriteHeader(status)
	render(w, errorTmpl, map[string]any{"Provider": a.cfg.Provider, "Message": msg, "Detail": detail})
}

func render(w http.ResponseWriter, t *template.Template, data any) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "no-store")
	_ = t.Execute(w, data)
}

const layout = `<!doctype html><html><head><meta charset=utf-8><title>PhotoPrints</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;background:#fff8f0;color:#2b2118;margin:0}
header{background:#e8613c;color:#fff;padding:.8rem 1.5rem;font-weight:700}
main{max-width:34rem;margin:2rem auto;padding:0 1rem}
a.button,button{display:inline-block;font:inherit;padding:.6rem 1.2rem;border-radius:8px;background:#2f4bd6;color:#fff;text-decoration:none;border:0;cursor:pointer}
a.quiet{font-size:.9rem;color:#555;margin-left:1rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}td{border-bottom:1px solid #eadccd;padding:.3rem .4rem;vertical-align:top}
td:first-child{font-weight:600;white-space:nowrap}
pre{background:#2b2118;color:#f6e7d8;padding:.8rem;border-radius:8px;overflow:auto}
.error{color:#b00020}
</style></head><body><header>PhotoPrints</header><main>{{template "body" .}}</main></body></html>`

func page(body string) *template.Template {
	return template.Must(template.Must(template.New("layout").Parse(layout)).New("body").Parse(body)).Lookup("layout")
}

var homeTmpl = page(`{{if .Claims}}<h1>Hello, <span id=name>{{.Name}}</span>!</h1>
<p>You are signed in with {{.Provider}}. Your ID token says:</p>
<table id=claims>{{range .Claims}}<tr><td>{{.Name}}</td><td>{{.Value}}</td></tr>{{end}}</table>
<h2>Your {{.Provider}} profile, from its API</h2>
{{with .API}}<pre id=api>{{.}}</pre>{{end}}{{with .APIError}}<p class=error id=api-error>{{.}}</p>{{end}}
<form method=post action=/logout><button id=logout>Sign out</button></form>
<form method=post action=/logout><input type=hidden name=everywhere value=1><button id=logout-everywhere class=secondary>Sign out of {{.Provider}} too</button></form>
{{else}}<h1>Print your photos</h1><p>Sign in to get started.</p>
<a class=button id=signin href=/login>Sign in with {{.Provider}}</a><a class=quiet id=signin-silent href="/login?prompt=none">Already signed in? Continue silently</a>{{end}}`)

var errorTmpl = page(`<h1>Not signed in</h1><p class=error id=error>{{.Message}}</p>{{with .Detail}}<p id=error-detail>{{.}}</p>{{end}}<p><a href=/>Back</a></p>`)
