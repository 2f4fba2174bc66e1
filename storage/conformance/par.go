package conformance

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchhq/latch/storage"
)

// testPAR: a pushed request keeps only the authorization parameters Latch
// reads (no credentials, no junk), is spent only by the client that pushed
// it, once, and never after it expires.
func testPAR(t *testing.T, f *fixture) {
	other := f.newClient("client-2")
	push := func(uri string) {
		t.Helper()
		ar := fosite.NewAuthorizeRequest()
		ar.ID, ar.RequestedAt, ar.Client = "req-"+uri, f.clock.Now(), f.client
		ar.Form.Set("response_type", "code")
		ar.Form.Set("client_id", f.client.ID)
		ar.Form.Set("scope", "openid")
		ar.Form.Set("nonce", "n-1")
		ar.Form.Set("client_secret", "must-not-be-stored")
		ar.Form.Set("client_assertion", "must-not-be-stored")
		ar.Form.Set("junk", strings.Repeat("j", 1000))
		sess := newSession()
		sess.SetExpiresAt(fosite.PushedAuthorizeRequestContext, f.clock.Now().Add(time.Minute))
		ar.SetSession(sess)
		must(t, f.s.CreatePARSession(f.ctx, uri, ar))
	}
	const uri = "urn:ietf:params:oauth:request_uri:one"
	push(uri)
	var form string
	must(t, f.s.DB().WithContext(f.ctx).Raw("SELECT form FROM par_requests").Scan(&form).Error)
	if form != "client_id=client-1&nonce=n-1&response_type=code&scope=openid" {
		t.Fatalf("stored form %q, want only the allow-listed parameters", form)
	}

	_, err := f.s.GetPARSession(f.ctx, uri)
	if err == nil {
		t.Fatal("a pushed request was redeemed without naming the client")
	}
	_, err = f.s.GetPARSession(storage.WithPARClient(f.ctx, other.ID), uri)
	wantErr(t, "another client", err, storage.ErrWrongClient)
	own := storage.WithPARClient(f.ctx, f.client.ID)
	ar, err := f.s.GetPARSession(own, uri)
	must(t, err)
	if ar.GetClient().GetID() != f.client.ID || ar.GetRequestForm().Get("nonce") != "n-1" || ar.GetID() != "req-"+uri {
		t.Fatalf("redeemed %+v", ar)
	}
	_, err = f.s.GetPARSession(own, uri)
	wantErr(t, "second redemption", err, storage.ErrStateConflict)
	_, err = f.s.GetPARSession(own, "urn:ietf:params:oauth:request_uri:unknown")
	wantErr(t, "unknown", err, fosite.ErrNotFound)

	push(uri + "-late")
	f.clock.Advance(2 * time.Minute)
	_, err = f.s.GetPARSession(own, uri+"-late")
	if !errors.Is(err, storage.ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
}
