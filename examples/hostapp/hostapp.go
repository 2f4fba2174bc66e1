// Package hostapp is the example host application: a site with its own
// users (password login) that puts Latch beside itself. It shows the
// approval page built on sdk/approval (client name, logo, scopes with
// descriptions, where the browser goes next), a "connected apps" page, a
// logout that also ends the user's Latch sessions, and an API protected by
// sdk/resource. Run it with `go run ./examples/demo`, which starts Latch and
// a third-party app beside it.
package hostapp

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/latchhq/latch/sdk/approval"
	"github.com/latchhq/latch/sdk/resource"
)

// Config wires the host app.
type Config struct {
	// PublicURL is where browsers reach the app (no trailing slash).
	PublicURL string
	// Name is the app's display name ("ExampleApp").
	Name string
	// LatchIssuer and LatchAPIKey reach Latch.
	LatchIssuer, LatchAPIKey string
	// Users are the app's accounts.
	Users []User
	Log   *slog.Logger
}

// User is an account of the host app.
type User struct {
	ID, Username, Name, Email string
	Password                  string // hashed by New, then forgotten
	salt, hash                []byte
}

// App is the host app's HTTP handler.
type App struct {
	cfg      Config
	latch    *approval.Client
	api      *resource.Verifier
	users    map[string]*User // by username
	byID     map[string]*User
	mux      *http.ServeMux
	mu       sync.Mutex
	sessions map[string]session
}

type session struct {
	user    *User
	authAt  time.Time
	expires time.Time
}

// APIPath is where the protected API lives; the resource identifier is
// PublicURL + APIPath.
const APIPath = "/api"

// Resource is the API's RFC 8707 resource identifier for a host app at
// publicURL.
func Resource(publicURL string) string { return publicURL + APIPath }

// New builds the app.
func New(cfg Config) (*App, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Name == "" {
		cfg.Name = "ExampleApp"
	}
	latch, err := approval.New(approval.Config{Issuer: cfg.LatchIssuer, APIKey: cfg.LatchAPIKey})
	if err != nil {
		return nil, err
	}
	api, err := resource.New(resource.Config{Issuer: cfg.LatchIssuer, Resource: Resource(cfg.PublicURL),
		ResourceName: cfg.Name + " API", ScopesSupported: []string{"profile", "email"}})
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, latch: latch, api: api, users: map[string]*User{}, byID: map[string]*User{}, sessions: map[string]session{}}
	for i := range cfg.Users {
		u := cfg.Users[i]
		u.salt = randomBytes(16)
		u.hash = hashPassword(u.Password, u.salt)
		u.Password = ""
		a.users[u.Username] = &u
		a.byID[u.ID] = &u
	}
	flow := &approval.Flow{Client: latch, Page: a.consentPage, Decide: a.decide, Error: a.flowError}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /login", a.loginPage)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.Handle("/oauth/approve", a.requireLogin(flow))
	mux.Handle("GET /connected", a.requireLogin(http.HandlerFunc(a.connected)))
	mux.Handle("POST /connected/revoke", a.requireLogin(http.HandlerFunc(a.revoke)))
	mux.Handle("GET "+APIPath+"/me", api.Require("profile")(http.HandlerFunc(a.apiMe)))
	mux.Handle("GET "+api.MetadataPath(), api.MetadataHandler())
	a.mux = mux
	return a, nil
}

// ApprovalURL is the LATCH_APPROVAL_URL for this app.
func (a *App) ApprovalURL() string { return a.cfg.PublicURL + "/oauth/approve" }

// ServeHTTP implements http.Handler, refusing cross-site form posts: the
// session cookie is SameSite=Lax, and the Origin check covers browsers
// that send cookies anyway.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' https: data:; style-src 'unsafe-inline'; frame-ancestors 'none'")
	if r.Method == http.MethodPost && !strings.HasPrefix(r.URL.Path, APIPath) {
		if o := r.Header.Get("Origin"); o != "" && o != a.cfg.PublicURL {
			http.Error(w, "cross-site form post refused", http.StatusForbidden)
			return
		}
	}
	a.mux.ServeHTTP(w, r)
}

const cookieName = "hostapp_session"

func (a *App) current(r *http.Request) (session, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return session{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[c.Value]
	if !ok || time.Now().After(s.expires) {
		return session{}, false
	}
	return s, true
}

type ctxKey struct{}

// requireLogin sends a signed-out browser to the login page and back.
func (a *App) requireLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := a.current(r)
		if !ok {
			if r.Method != http.MethodGet {
				http.Error(w, "please sign in again", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
	})
}

func sessionFrom(r *http.Request) session { s, _ := r.Context().Value(ctxKey{}).(session); return s }

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	s, ok := a.current(r)
	data := map[string]any{"Name": a.cfg.Name}
	if ok {
		data["User"] = s.user
	}
	render(w, homeTmpl, data)
}

func (a *App) loginPage(w http.ResponseWriter, r *http.Request) {
	render(w, loginTmpl, map[string]any{"Name": a.cfg.Name, "Next": r.URL.Query().Get("next")})
}

// localPath keeps a post-login redirect on this site.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	return p
}

func (a *App) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	u, ok := a.users[r.PostForm.Get("username")]
	next := localPath(r.PostForm.Get("next"))
	if !ok || !hmac.Equal(hashPassword(r.PostForm.Get("password"), u.salt), u.hash) {
		w.WriteHeader(http.StatusUnauthorized)
		render(w, loginTmpl, map[string]any{"Name": a.cfg.Name, "Next": next, "Error": "Wrong username or password."})
		return
	}
	id := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	now := time.Now()
	a.mu.Lock()
	a.sessions[id] = session{user: u, authAt: now, expires: now.Add(8 * time.Hour)}
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: strings.HasPrefix(a.cfg.PublicURL, "https://")})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the app's session and every Latch login session of the
// user, so "Sign in with" does not complete silently afterwards.
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	if s, ok := a.current(r); ok {
		c, _ := r.Cookie(cookieName)
		a.mu.Lock()
		delete(a.sessions, c.Value)
		a.mu.Unlock()
		if err := a.latch.EndSessions(r.Context(), s.user.ID); err != nil {
			a.cfg.Log.Warn("could not end the user's Latch sessions", "user", s.user.ID, "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (a *App) consentPage(w http.ResponseWriter, r *http.Request, s *approval.Session) {
	sess := sessionFrom(r)
	// max_age: a login older than the client accepts means logging in again.
	if s.MaxAge != nil && time.Since(sess.authAt) > time.Duration(*s.MaxAge)*time.Second {
		a.forgetSession(r)
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	render(w, consentTmpl, map[string]any{"Name": a.cfg.Name, "S": s, "User": sess.user, "Initial": initial(s.Client.ClientName)})
}

func (a *App) forgetSession(r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		a.mu.Lock()
		delete(a.sessions, c.Value)
		a.mu.Unlock()
	}
}

func initial(name string) string {
	for _, r := range name {
		return strings.ToUpper(string(r))
	}
	return "?"
}

func (a *App) decide(r *http.Request, s *approval.Session) (approval.Decision, error) {
	sess := sessionFrom(r)
	if r.PostForm.Get("decision") != "approve" {
		return approval.Decision{DenyDescription: sess.user.Name + " declined the request"}, nil
	}
	return approval.Decision{Approve: true, Approval: approval.Approval{
		User:     sess.user.ID,
		Claims:   map[string]any{"name": sess.user.Name, "preferred_username": sess.user.Username, "email": sess.user.Email, "email_verified": true},
		Remember: r.PostForm.Get("remember") == "on",
		AuthTime: sess.authAt,
	}}, nil
}

func (a *App) flowError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusBadGateway, "We could not reach the sign-in service. Please try again."
	switch {
	case errors.Is(err, approval.ErrNotFound), errors.Is(err, approval.ErrExpired):
		status, msg = http.StatusNotFound, "This sign-in request has expired. Go back to the app and start again."
	case errors.Is(err, approval.ErrConflict):
		status, msg = http.StatusConflict, "This sign-in request was already answered."
	default:
		a.cfg.Log.Error("approval failed", "err", err)
	}
	w.WriteHeader(status)
	render(w, errorTmpl, map[string]any{"Name": a.cfg.Name, "Message": msg})
}

type connectedApp struct {
	ClientID, Name, Logo, Initial string
	Scopes                        []string
	Since                         time.Time
}

func (a *App) connected(w http.ResponseWriter, r *http.Request) {
	u := sessionFrom(r).user
	list, err := a.latch.Authorizations(r.Context(), u.ID)
	if err != nil {
		a.flowError(w, r, err)
		return
	}
	apps := make([]connectedApp, 0, len(list))
	for _, au := range list {
		ca := connectedApp{ClientID: au.ClientID, Name: au.ClientID, Scopes: au.Scopes, Since: au.CreatedAt}
		if info, err := a.latch.App(r.Context(), au.ClientID); err == nil {
			ca.Name, ca.Logo = info.ClientName, info.LogoURI
		}
		ca.Initial = initial(ca.Name)
		apps = append(apps, ca)
	}
	render(w, connectedTmpl, map[string]any{"Name": a.cfg.Name, "User": u, "Apps": apps})
}

func (a *App) revoke(w http.ResponseWriter, r *http.Request) {
	u := sessionFrom(r).user
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if err := a.latch.RevokeAuthorization(r.Context(), u.ID, r.PostForm.Get("client_id")); err != nil && !errors.Is(err, approval.ErrNotFound) {
		a.flowError(w, r, err)
		return
	}
	http.Redirect(w, r, "/connected", http.StatusSeeOther)
}

// apiMe is the protected API: the token's user, as the host app knows them.
func (a *App) apiMe(w http.ResponseWriter, r *http.Request) {
	c, _ := resource.ClaimsFrom(r.Context())
	u, ok := a.byID[c.Subject]
	if !ok {
		http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
		return
	}
	out := map[string]any{"sub": u.ID, "name": u.Name, "username": u.Username, "client_id": c.ClientID, "scope": strings.Join(c.Scopes, " ")}
	if c.HasScope("email") {
		out["email"] = u.Email
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func hashPassword(pw string, salt []byte) []byte {
	k, err := pbkdf2.Key(sha256.New, pw, salt, 100_000, 32)
	if err != nil {
		panic(fmt.Sprintf("pbkdf2: %v", err)) // only for invalid parameters, which are constant here
	}
	return k
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
