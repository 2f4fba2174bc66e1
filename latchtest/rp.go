package latchtest

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchhq/latch/endpoint"
)

// RP is a relying party for one client, driving golang.org/x/oauth2 with
// PKCE against the instance.
type RP struct {
	Env  *Env
	Conf oauth2.Config
}

// NewRP makes a relying party for c (client_secret_basic when it has a
// secret).
func (e *Env) NewRP(c Client) *RP {
	return &RP{Env: e, Conf: oauth2.Config{
		ClientID: c.ID, ClientSecret: c.Secret, RedirectURL: c.RedirectURIs[0],
		Endpoint: oauth2.Endpoint{AuthURL: e.URL + endpoint.Authorize, TokenURL: e.URL + endpoint.Token, AuthStyle: oauth2.AuthStyleInHeader},
	}}
}

// AuthURL is an authorization request with PKCE and its verifier; extra
// adds parameters such as prompt.
func (r *RP) AuthURL(scopes []string, extra ...oauth2.AuthCodeOption) (string, string) {
	verifier := oauth2.GenerateVerifier()
	conf := r.Conf
	conf.Scopes = scopes
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}, extra...)
	return conf.AuthCodeURL("state-0123456789", opts...), verifier
}

// Exchange redeems the code in the client redirect loc.
func (r *RP) Exchange(t testing.TB, loc *url.URL, verifier string) *oauth2.Token {
	t.Helper()
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", loc)
	}
	tok, err := r.Conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok
}

// Login runs a whole approved flow in b and returns the tokens.
func (r *RP) Login(t testing.TB, b *Browser, scopes []string, approve map[string]any) *oauth2.Token {
	t.Helper()
	u, verifier := r.AuthURL(scopes)
	return r.Exchange(t, r.Env.Authorize(b, u, approve), verifier)
}

// Silent sends prompt=none and returns where the browser is sent.
func (r *RP) Silent(t testing.TB, b *Browser, scopes []string) (*url.URL, string) {
	t.Helper()
	u, verifier := r.AuthURL(scopes, oauth2.SetAuthURLParam("prompt", "none"))
	resp, body := b.Get(u)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("prompt=none: %d %s", resp.StatusCode, body)
	}
	return Location(t, resp), verifier
}

// Refresh redeems a refresh token.
func (r *RP) Refresh(refreshToken string) (*oauth2.Token, error) {
	return r.Conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
}
