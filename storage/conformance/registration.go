package conformance

import (
	"slices"
	"testing"

	"github.com/ory/fosite"

	"github.com/latchhq/latch/storage"
)

// testAuthorizationsPerRedirect: a client identified by a metadata
// document remembers grants per redirect URI, so two installations of one
// agent never share one (SPEC §6); forgetting the client forgets all.
func testAuthorizationsPerRedirect(t *testing.T, f *fixture) {
	ctx := f.ctx
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
