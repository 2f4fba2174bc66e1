package thirdparty

import (
	"context"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/sdk/tokenagent"
)

// TokenSource makes the agent an oauth2.TokenSource: x/oauth2 code gets
// tokens the agent refreshed (once, serialized) and never refreshes
// itself.
func TestTokenSourceAdapter(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	rp := env.NewRP(env.WebClient("client_secret_basic"))
	tok := rp.Login(t, latchtest.NewBrowser(t), []string{"openid", "offline_access"}, map[string]any{"user": "ann"})
	var mu sync.Mutex
	now := time.Now()
	agent, err := tokenagent.New(context.Background(), tokenagent.Config{TokenURL: env.URL + "/oauth2/token", ClientID: rp.Conf.ClientID, ClientSecret: rp.Conf.ClientSecret,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }},
		&tokenagent.Token{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry})
	if err != nil {
		t.Fatal(err)
	}
	var src oauth2.TokenSource = TokenSource{Agent: agent}
	got, err := src.Token()
	if err != nil || got.AccessToken != tok.AccessToken || got.RefreshToken != "" || got.TokenType != "Bearer" {
		t.Fatalf("%+v %v", got, err)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	got, err = src.Token()
	if err != nil || got.AccessToken == tok.AccessToken || agent.Requests() != 1 {
		t.Fatalf("after expiry: %+v %v (%d requests)", got, err, agent.Requests())
	}
	// x/oauth2's own cache in front must not call the agent while its
	// token is valid by the wall clock.
	reuse := oauth2.ReuseTokenSource(nil, src)
	a, _ := reuse.Token()
	b, _ := reuse.Token()
	if a.AccessToken != b.AccessToken || agent.Requests() != 1 {
		t.Fatalf("reuse: %d requests", agent.Requests())
	}
}
