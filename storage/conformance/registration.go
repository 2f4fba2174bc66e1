package conformance

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchhq/latch/storage"
)

// testAuthorizationsPerRedirect: a client identified by a metadata
// document remembers grants per redirect URI, so two installations of one
// agent never share one (SPEC §6); forgetting the client forgets all.
func testAuthorizationsPerRedirect(t *testing.T, f *fixture) {
	ctx := f.ctx
	f.s.UseExternalClients(documentClients{})
	const doc = "https://agent.example.com/client.json"
	one, two := "http://127.0.0.1:50001/cb", "http://127.0.0.1:50002/cb"
	if storage.GrantRedirect(doc, one) != one || storage.GrantRedirect(f.client.ID, one) != "" {
		t.Fatal("GrantRedirect keys document clients by redirect URI and nothing else by it")
	}
	must(t, f.s.RememberAuthorizationAt(ctx, "user-1", doc, one, []string{"openid"}))
	_, err := f.s.AuthorizationAt(ctx, "user-1", doc, two)
	wantErr(t, "other installation", err, fosite.ErrNotFound)
	_, err = f.s.Authorization(ctx, "user-1", doc)
	wantErr(t, "no redirect URI", err, fosite.ErrNotFound)
	must(t, f.s.RememberAuthorizationAt(ctx, "user-1", doc, two, []string{"email"}))
	must(t, f.s.RememberAuthorizationAt(ctx, "user-1", doc, one, []string{"profile"}))
	a, err := f.s.AuthorizationAt(ctx, "user-1", doc, one)
	must(t, err)
	if !slices.Equal(a.Scopes, []string{"openid", "profile"}) || a.RedirectURI != one {
		t.Fatalf("first installation: %+v", a)
	}
	list, err := f.s.ListAuthorizations(ctx, "user-1")
	must(t, err)
	if len(list) != 2 || list[0].RedirectURI != one || list[1].RedirectURI != two {
		t.Fatalf("list: %+v", list)
	}
	must(t, f.s.DeleteAuthorization(ctx, "user-1", doc))
	if list, _ := f.s.ListAuthorizations(ctx, "user-1"); len(list) != 0 {
		t.Fatalf("after forgetting the client: %+v", list)
	}
}

// testRegistrationTokens: initial access tokens are spent with a
// conditional update, never past max_uses (also under concurrency), never
// after expiry, and not at all once deleted.
func testRegistrationTokens(t *testing.T, f *fixture) {
	ctx := f.ctx
	exp := f.clock.Now().Add(time.Hour)
	must(t, f.s.CreateRegistrationToken(ctx, &storage.RegistrationToken{ID: "once", Hash: "h-once", MaxUses: 1}))
	must(t, f.s.CreateRegistrationToken(ctx, &storage.RegistrationToken{ID: "hour", Hash: "h-hour", ExpiresAt: &exp}))
	must(t, f.s.CreateRegistrationToken(ctx, &storage.RegistrationToken{ID: "five", Hash: "h-five", MaxUses: 5}))
	must(t, f.s.UseRegistrationToken(ctx, "h-once"))
	wantErr(t, "used up", f.s.UseRegistrationToken(ctx, "h-once"), fosite.ErrNotFound)
	wantErr(t, "unknown", f.s.UseRegistrationToken(ctx, "h-none"), fosite.ErrNotFound)
	must(t, f.s.UseRegistrationToken(ctx, "h-hour"))
	f.clock.Advance(2 * time.Hour)
	wantErr(t, "expired", f.s.UseRegistrationToken(ctx, "h-hour"), fosite.ErrNotFound)

	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if f.s.UseRegistrationToken(ctx, "h-five") == nil {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 5 {
		t.Fatalf("%d concurrent uses of a 5-use token succeeded", won)
	}
	list, err := f.s.ListRegistrationTokens(ctx)
	must(t, err)
	if len(list) != 3 {
		t.Fatalf("list: %+v", list)
	}
	for _, tk := range list {
		if tk.ID == "five" && tk.Uses != 5 || tk.ID == "once" && tk.Uses != 1 {
			t.Fatalf("uses: %+v", tk)
		}
	}
	must(t, f.s.DeleteRegistrationToken(ctx, "hour"))
	wantErr(t, "delete twice", f.s.DeleteRegistrationToken(ctx, "hour"), fosite.ErrNotFound)
}

// testIdleDynamicClients: the janitor deletes dynamically registered
// clients that never obtained a token once they are idle long enough, and
// nothing else.
func testIdleDynamicClients(t *testing.T, f *fixture) {
	ctx := f.ctx
	dyn := func(id string) {
		c := &storage.Client{ID: id, Name: id, RedirectURIs: []string{"https://client.example/cb"}, GrantTypes: []string{"authorization_code"},
			ResponseTypes: []string{"code"}, TokenEndpointAuthMethod: "none", Public: true, Dynamic: true, RegistrationTokenHash: "rh-" + id}
		must(t, f.s.CreateClient(ctx, c))
	}
	dyn("idle")
	dyn("used")
	dyn("idle-2")
	f.newClient("managed")
	must(t, f.s.MarkClientObtainedToken(ctx, "used"))
	must(t, f.s.MarkClientObtainedToken(ctx, "managed")) // not dynamic: no effect
	c, err := f.s.Client(ctx, "used")
	must(t, err)
	if !c.ObtainedToken || !c.Dynamic || c.RegistrationTokenHash != "rh-used" {
		t.Fatalf("dynamic client fields: %+v", c)
	}
	f.clock.Advance(2 * time.Hour)
	dyn("young")
	res, err := f.s.Purge(ctx, storage.JanitorOptions{DynamicClientIdle: time.Hour})
	must(t, err)
	if res["clients/idle_dynamic"] != 2 {
		t.Fatalf("purged %v, want the two idle dynamic clients", res)
	}
	for id, gone := range map[string]bool{"idle": true, "idle-2": true, "used": false, "young": false, "managed": false, f.client.ID: false} {
		_, err := f.s.Client(ctx, id)
		if gone != errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("client %s: err %v, want gone=%v", id, err, gone)
		}
	}
}

// documentClients stands in for the metadata-document resolver (package
// cimd, which fetches over the network): the storage rules under test only
// ask which ids are documents, never a row of clients.
type documentClients struct{}

func (documentClients) Handles(id string) bool { return strings.HasPrefix(id, "https://") }

func (documentClients) Client(context.Context, string) (*storage.Client, error) {
	return nil, storage.ErrNotFound
}
