package conformance

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchhq/latch/storage"
)

func testClients(t *testing.T, f *fixture) {
	ctx := f.ctx
	_, err := f.s.GetClient(ctx, "nope")
	wantErr(t, "unknown client", err, fosite.ErrNotFound)

	c, err := f.s.Client(ctx, f.client.ID)
	must(t, err)
	if c.Name != "Client client-1" || !slices.Equal(c.RedirectURIs, []string{"https://client.example/cb"}) ||
		c.Public || c.Scope != "openid offline_access" || c.Audience == nil {
		t.Fatalf("client round trip: %+v", c)
	}
	dup := *f.client
	wantErr(t, "duplicate client id", f.s.CreateClient(ctx, &dup), fosite.ErrSerializationFailure)

	jwks := `{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"k1","use":"sig","alg":"ES256"}]}`
	c.JWKS, c.Public, c.Contacts = jwks, true, []string{"ops@example.com"}
	must(t, f.s.UpdateClient(ctx, c))
	fc, err := f.s.GetClient(ctx, c.ID)
	must(t, err)
	got := fc.(*storage.Client)
	if !got.Public || got.GetJSONWebKeys() == nil || len(got.GetJSONWebKeys().Keys) != 1 || got.Contacts[0] != "ops@example.com" {
		t.Fatalf("update not stored: %+v", got)
	}
	if !got.CreatedAt.Equal(f.client.CreatedAt) {
		t.Fatalf("update changed created_at: %v vs %v", got.CreatedAt, f.client.CreatedAt)
	}
	missing := *c
	missing.ID = "missing"
	wantErr(t, "update missing", f.s.UpdateClient(ctx, &missing), fosite.ErrNotFound)

	must(t, f.s.RotateClientSecret(ctx, c.ID, "new-hash", nil))
	c2, _ := f.s.Client(ctx, c.ID)
	if string(c2.GetHashedSecret()) != "new-hash" || len(c2.GetRotatedHashes()) != 0 {
		t.Fatal("secret hash not rotated, or the old one kept without a grace period")
	}
	until := f.clock.Now().Add(time.Hour)
	must(t, f.s.RotateClientSecret(ctx, c.ID, "newer-hash", &until))
	c3, _ := f.s.Client(ctx, c.ID)
	if string(c3.GetHashedSecret()) != "newer-hash" || len(c3.GetRotatedHashes()) != 1 || string(c3.GetRotatedHashes()[0]) != "new-hash" {
		t.Fatalf("grace-period rotation: current %q rotated %q", c3.GetHashedSecret(), c3.GetRotatedHashes())
	}
	wantErr(t, "rotate missing", f.s.RotateClientSecret(ctx, "missing", "x", nil), fosite.ErrNotFound)
	// A metadata update never writes the secret columns: its caller may hold
	// a copy read before a concurrent rotation.
	stale := *c3
	stale.SecretHash, stale.RotatedSecretHash, stale.RotatedSecretExpiresAt, stale.Name = "stale-hash", "", nil, "Renamed"
	must(t, f.s.UpdateClient(ctx, &stale))
	c4, err := f.s.ClientForUpdate(ctx, c.ID)
	must(t, err)
	if c4.SecretHash != "newer-hash" || c4.RotatedSecretHash != "new-hash" || c4.RotatedSecretExpiresAt == nil || c4.Name != "Renamed" {
		t.Fatalf("update wrote secret columns or lost metadata: secret %q rotated %q name %q", c4.SecretHash, c4.RotatedSecretHash, c4.Name)
	}
	_, err = f.s.ClientForUpdate(ctx, "missing")
	wantErr(t, "locked read of missing", err, fosite.ErrNotFound)

	for _, id := range []string{"client-2", "client-3", "client-4"} {
		f.newClient(id)
	}
	other := &storage.Client{ID: "client-5", Owner: "owner-2"}
	must(t, f.s.CreateClient(ctx, other))
	page, err := f.s.ListClients(ctx, "", "client-1", 2)
	must(t, err)
	if len(page) != 2 || page[0].ID != "client-2" || page[1].ID != "client-3" {
		t.Fatalf("page after client-1: %v", ids(page))
	}
	mine, err := f.s.ListClients(ctx, "owner-2", "", 10)
	must(t, err)
	if len(mine) != 1 || mine[0].ID != "client-5" {
		t.Fatalf("owner filter: %v", ids(mine))
	}
	n, err := f.s.CountClients(ctx)
	must(t, err)
	if n != 5 {
		t.Fatalf("count %d", n)
	}

	// Deleting a client takes its tokens, sessions and authorizations along.
	must(t, f.s.CreateAccessTokenSession(ctx, "at-1", f.request("req-1")))
	must(t, f.s.RememberAuthorization(ctx, "user-1", c.ID, []string{"openid"}))
	must(t, f.s.CreateAuthSession(ctx, &storage.AuthSession{ID: "as-1", ClientID: c.ID, BrowserHash: "b", ExpiresAt: f.clock.Now().Add(time.Minute)}))
	must(t, f.s.DeleteClient(ctx, c.ID))
	wantErr(t, "delete missing", f.s.DeleteClient(ctx, c.ID), fosite.ErrNotFound)
	for _, table := range []string{"oauth2_tokens", "auth_sessions", "authorizations"} {
		if n := f.count(table, "client_id = ?", c.ID); n != 0 {
			t.Fatalf("%s still has %d rows of the deleted client", table, n)
		}
	}
}

func ids(cs []storage.Client) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func testAuthSessions(t *testing.T, f *fixture) {
	ctx := f.ctx
	_, err := f.s.AuthSession(ctx, "nope")
	wantErr(t, "unknown session", err, fosite.ErrNotFound)
	_, err = f.s.DecideAuthSession(ctx, "nope", storage.Decision{Approve: true, Subject: "u", Verifier: "v"})
	wantErr(t, "decide unknown", err, fosite.ErrNotFound)
	_, err = f.s.CompleteAuthSession(ctx, "nope", "browser-1", "v")
	wantErr(t, "complete unknown", err, fosite.ErrNotFound)
	// Malformed ids (NUL, invalid UTF-8, too long) are unknown, never a
	// database error: PostgreSQL refuses such text instead of finding nothing.
	for _, bad := range []string{"\x00", "as\x00-1", "\xff\xfe", "", strings.Repeat("a", 200)} {
		_, err = f.s.AuthSession(ctx, bad)
		wantErr(t, "read malformed id", err, fosite.ErrNotFound)
		_, err = f.s.DecideAuthSession(ctx, bad, storage.Decision{Approve: true, Subject: "u", Verifier: "v"})
		wantErr(t, "decide malformed id", err, fosite.ErrNotFound)
		_, err = f.s.CompleteAuthSession(ctx, bad, "browser-1", "v")
		wantErr(t, "complete malformed id", err, fosite.ErrNotFound)
	}

	mk := func(id string) {
		must(t, f.s.CreateAuthSession(ctx, &storage.AuthSession{
			ID: id, ClientID: f.client.ID, RequestForm: "response_type=code", BrowserHash: "browser-1",
			RequestedScopes: []string{"openid", "email"}, ExpiresAt: f.clock.Now().Add(10 * time.Minute),
		}))
	}
	mk("as-1")
	a, err := f.s.AuthSession(ctx, "as-1")
	must(t, err)
	if a.State != storage.AuthPending || !slices.Equal(a.RequestedScopes, []string{"openid", "email"}) || a.Remember {
		t.Fatalf("new session: %+v", a)
	}
	_, err = f.s.CompleteAuthSession(ctx, "as-1", "browser-1", "")
	wantErr(t, "complete pending", err, storage.ErrStateConflict)

	authTime := f.clock.Now().Add(-time.Minute)
	a, err = f.s.DecideAuthSession(ctx, "as-1", storage.Decision{
		Approve: true, Subject: "user-1", GrantedScopes: []string{"openid"}, Remember: true,
		Claims: map[string]any{"email": "a@example.com", "email_verified": true}, AuthTime: authTime, ACR: "mfa",
		Verifier: "verifier-1",
	})
	must(t, err)
	if a.State != storage.AuthApproved || a.Subject != "user-1" || !a.Remember || a.ACR != "mfa" ||
		a.Claims["email"] != "a@example.com" || a.Claims["email_verified"] != true ||
		a.AuthTime == nil || !a.AuthTime.Equal(authTime) || !slices.Equal(a.GrantedScopes, []string{"openid"}) ||
		a.RequestForm != "response_type=code" {
		t.Fatalf("approved session: %+v", a)
	}
	if a.VerifierHash == "" || strings.Contains(a.VerifierHash, "verifier-1") {
		t.Fatalf("the verifier is stored only hashed, got %q", a.VerifierHash)
	}
	_, err = f.s.DecideAuthSession(ctx, "as-1", storage.Decision{Approve: false, Verifier: "v2"})
	wantErr(t, "second decision", err, storage.ErrStateConflict)

	// Completing needs the binding and the verifier: neither alone will do,
	// and a failed attempt spends nothing.
	_, err = f.s.CompleteAuthSession(ctx, "as-1", "browser-2", "verifier-1")
	wantErr(t, "complete from another browser", err, storage.ErrStateConflict)
	for _, v := range []string{"", "verifier-2", "verifier-1x"} {
		_, err = f.s.CompleteAuthSession(ctx, "as-1", "browser-1", v)
		wantErr(t, "complete with verifier "+v, err, storage.ErrStateConflict)
	}
	done, err := f.s.CompleteAuthSession(ctx, "as-1", "browser-1", "verifier-1")
	must(t, err)
	if done.State != storage.AuthApproved || done.Subject != "user-1" || done.ACR != "mfa" || done.Claims["email"] != "a@example.com" ||
		done.AuthTime == nil || !done.AuthTime.Equal(authTime) || !slices.Equal(done.GrantedScopes, []string{"openid"}) {
		t.Fatalf("complete returns the decided session, got %+v", done)
	}
	_, err = f.s.CompleteAuthSession(ctx, "as-1", "browser-1", "verifier-1")
	wantErr(t, "second completion", err, storage.ErrStateConflict)

	mk("as-2")
	d, err := f.s.DecideAuthSession(ctx, "as-2", storage.Decision{ErrorDescription: "nope", Verifier: "verifier-2"})
	must(t, err)
	if d.State != storage.AuthDenied || d.ErrorDescription != "nope" {
		t.Fatalf("denied session: %+v", d)
	}
	d, err = f.s.CompleteAuthSession(ctx, "as-2", "browser-1", "verifier-2")
	must(t, err)
	if d.State != storage.AuthDenied || d.ErrorDescription != "nope" {
		t.Fatalf("completed denial: %+v", d)
	}

	// A completion inside a transaction that rolls back leaves the session
	// decided, so the same browser can try again.
	mk("as-4")
	_, err = f.s.DecideAuthSession(ctx, "as-4", storage.Decision{Approve: true, Subject: "u", Verifier: "verifier-4"})
	must(t, err)
	errInjected := errors.New("injected")
	err = f.s.InTx(ctx, func(ctx context.Context) error {
		if _, err := f.s.CompleteAuthSession(ctx, "as-4", "browser-1", "verifier-4"); err != nil {
			return err
		}
		return errInjected
	})
	wantErr(t, "rolled back completion", err, errInjected)
	_, err = f.s.CompleteAuthSession(ctx, "as-4", "browser-1", "verifier-4")
	must(t, err)

	mk("as-3")
	mk("as-5")
	_, err = f.s.DecideAuthSession(ctx, "as-5", storage.Decision{Approve: true, Subject: "u", Verifier: "verifier-5"})
	must(t, err)
	f.clock.Advance(11 * time.Minute)
	_, err = f.s.CompleteAuthSession(ctx, "as-5", "browser-1", "verifier-5")
	wantErr(t, "complete expired", err, storage.ErrExpired)
	_, err = f.s.AuthSession(ctx, "as-3")
	wantErr(t, "expired session", err, storage.ErrExpired)
	_, err = f.s.DecideAuthSession(ctx, "as-3", storage.Decision{Approve: true, Subject: "u", Verifier: "v"})
	wantErr(t, "decide expired", err, storage.ErrExpired)
	wantErr(t, "duplicate session id", f.s.CreateAuthSession(ctx, &storage.AuthSession{ID: "as-3", ClientID: f.client.ID, ExpiresAt: f.clock.Now()}), fosite.ErrSerializationFailure)
}

func testLoginSessions(t *testing.T, f *fixture) {
	ctx := f.ctx
	_, err := f.s.LoginSession(ctx, "nope")
	wantErr(t, "unknown login session", err, fosite.ErrNotFound)
	at := f.clock.Now().Add(-time.Hour)
	must(t, f.s.CreateLoginSession(ctx, &storage.LoginSession{IDHash: "h1", Subject: "user-1", AuthTime: at, ACR: "pwd",
		Claims: map[string]any{"name": "Ann"}, ExpiresAt: f.clock.Now().Add(time.Hour)}))
	l, err := f.s.LoginSession(ctx, "h1")
	must(t, err)
	if l.Subject != "user-1" || !l.AuthTime.Equal(at) || l.Claims["name"] != "Ann" || l.ACR != "pwd" {
		t.Fatalf("login session: %+v", l)
	}
	f.clock.Advance(2 * time.Hour)
	_, err = f.s.LoginSession(ctx, "h1")
	wantErr(t, "expired login session", err, fosite.ErrNotFound)
	must(t, f.s.CreateLoginSession(ctx, &storage.LoginSession{IDHash: "h2", Subject: "u", AuthTime: at, ExpiresAt: f.clock.Now().Add(time.Hour)}))
	must(t, f.s.DeleteLoginSession(ctx, "h2"))
	_, err = f.s.LoginSession(ctx, "h2")
	wantErr(t, "deleted login session", err, fosite.ErrNotFound)
}

func testAuthorizations(t *testing.T, f *fixture) {
	ctx := f.ctx
	_, err := f.s.Authorization(ctx, "user-1", f.client.ID)
	wantErr(t, "unknown authorization", err, fosite.ErrNotFound)
	must(t, f.s.RememberAuthorization(ctx, "user-1", f.client.ID, []string{"openid", "email"}))
	f.clock.Advance(time.Minute)
	must(t, f.s.RememberAuthorization(ctx, "user-1", f.client.ID, []string{"email", "profile"}))
	a, err := f.s.Authorization(ctx, "user-1", f.client.ID)
	must(t, err)
	if !slices.Equal(a.Scopes, []string{"openid", "email", "profile"}) || !a.UpdatedAt.After(a.CreatedAt) {
		t.Fatalf("remembered scopes are the union, created_at kept: %+v", a)
	}
	f.newClient("client-2")
	must(t, f.s.RememberAuthorization(ctx, "user-1", "client-2", []string{"openid"}))
	list, err := f.s.ListAuthorizations(ctx, "user-1")
	must(t, err)
	if len(list) != 2 || list[0].ClientID != f.client.ID || list[1].ClientID != "client-2" {
		t.Fatalf("list: %+v", list)
	}
	must(t, f.s.CreateAccessTokenSession(ctx, "at-1", f.request("req-1")))
	must(t, f.s.DeleteAuthorization(ctx, "user-1", f.client.ID))
	_, err = f.s.GetAccessTokenSession(ctx, "at-1", newSession())
	wantErr(t, "token after forgetting the authorization", err, fosite.ErrInactiveToken)
	wantErr(t, "delete missing authorization", f.s.DeleteAuthorization(ctx, "user-1", f.client.ID), fosite.ErrNotFound)
}

func testAPIKeys(t *testing.T, f *fixture) {
	ctx := f.ctx
	_, err := f.s.APIKeyByHash(ctx, "nope")
	wantErr(t, "unknown api key", err, fosite.ErrNotFound)
	must(t, f.s.CreateAPIKey(ctx, &storage.APIKey{ID: "k1", Name: "one", Hash: "h1"}))
	must(t, f.s.CreateAPIKey(ctx, &storage.APIKey{ID: "k2", Name: "two", Hash: "h2"}))
	wantErr(t, "duplicate api key hash", f.s.CreateAPIKey(ctx, &storage.APIKey{ID: "k3", Hash: "h1"}), fosite.ErrSerializationFailure)
	k, err := f.s.APIKeyByHash(ctx, "h1")
	must(t, err)
	if k.ID != "k1" || k.Name != "one" {
		t.Fatalf("key: %+v", k)
	}
	must(t, f.s.RevokeAPIKey(ctx, "k1"))
	_, err = f.s.APIKeyByHash(ctx, "h1")
	wantErr(t, "revoked key", err, fosite.ErrNotFound)
	wantErr(t, "revoke twice", f.s.RevokeAPIKey(ctx, "k1"), fosite.ErrNotFound)
	list, err := f.s.ListAPIKeys(ctx)
	must(t, err)
	if len(list) != 2 || list[0].RevokedAt == nil || list[1].RevokedAt != nil {
		t.Fatalf("list: %+v", list)
	}
	// Put replaces the configured key, un-revoking it.
	must(t, f.s.PutAPIKey(ctx, &storage.APIKey{ID: "k1", Name: "config", Hash: "h1b"}))
	k, err = f.s.APIKeyByHash(ctx, "h1b")
	must(t, err)
	if k.ID != "k1" || k.Name != "config" {
		t.Fatalf("put: %+v", k)
	}
	must(t, f.s.DeleteAPIKey(ctx, "k1"))
	_, err = f.s.APIKeyByHash(ctx, "h1b")
	wantErr(t, "deleted key", err, fosite.ErrNotFound)
}

func testSigningKeys(t *testing.T, f *fixture) {
	ctx := f.ctx
	now := f.clock.Now()
	must(t, f.s.InsertSigningKey(ctx, &storage.SigningKey{KID: "old", Alg: "ES256", PublicJWK: "{}", PrivateSealed: "sealed", ActivatesAt: now.Add(-time.Hour)}))
	must(t, f.s.InsertSigningKey(ctx, &storage.SigningKey{KID: "new", Alg: "ES256", PublicJWK: "{}", PrivateSealed: "sealed", ActivatesAt: now}))
	wantErr(t, "duplicate kid", f.s.InsertSigningKey(ctx, &storage.SigningKey{KID: "new", Alg: "ES256", ActivatesAt: now}), fosite.ErrSerializationFailure)
	must(t, f.s.RetireSigningKeys(ctx, "ES256", now, now.Add(time.Hour)))
	list, err := f.s.ListSigningKeys(ctx)
	must(t, err)
	if len(list) != 2 || list[0].KID != "old" || list[0].RetiresAt == nil || !list[0].RetiresAt.Equal(now.Add(time.Hour)) || list[1].RetiresAt != nil {
		t.Fatalf("keys after retire: %+v", list)
	}
	f.clock.Advance(2 * time.Hour)
	list, err = f.s.ListSigningKeys(ctx)
	must(t, err)
	if len(list) != 1 || list[0].KID != "new" {
		t.Fatalf("retired key still listed: %+v", list)
	}
}

func testReplay(t *testing.T, f *fixture) {
	ctx := f.ctx
	exp := f.clock.Now().Add(time.Minute)
	must(t, f.s.MarkJTI(ctx, "dpop", "jti-1", exp))
	wantErr(t, "replayed jti", f.s.MarkJTI(ctx, "dpop", "jti-1", exp), storage.ErrReplay)
	must(t, f.s.MarkJTI(ctx, "other-purpose", "jti-1", exp)) // purposes are separate namespaces
	f.clock.Advance(2*time.Minute + storage.ReplayClockSkew)
	must(t, f.s.MarkJTI(ctx, "dpop", "jti-1", f.clock.Now().Add(time.Minute))) // expired entries may be reused

	alice := storage.WithAssertionClient(ctx, "alice")
	must(t, f.s.ClientAssertionJWTValid(alice, "assert-1"))
	must(t, f.s.SetClientAssertionJWT(alice, "assert-1", f.clock.Now().Add(time.Minute)))
	wantErr(t, "known assertion", f.s.ClientAssertionJWTValid(alice, "assert-1"), fosite.ErrJTIKnown)
	wantErr(t, "assertion reused", f.s.SetClientAssertionJWT(alice, "assert-1", f.clock.Now().Add(time.Minute)), fosite.ErrJTIKnown)
}

// testAssertionJTIsPerClient: a client assertion's jti is remembered per
// client, so one client can neither replay-block nor be blocked by
// another's jtis, and a check that names no client fails closed.
func testAssertionJTIsPerClient(t *testing.T, f *fixture) {
	ctx := f.ctx
	exp := f.clock.Now().Add(time.Minute)
	alice, bob := storage.WithAssertionClient(ctx, "alice"), storage.WithAssertionClient(ctx, "bob")
	must(t, f.s.SetClientAssertionJWT(alice, "shared-jti", exp))
	must(t, f.s.ClientAssertionJWTValid(bob, "shared-jti"))
	must(t, f.s.SetClientAssertionJWT(bob, "shared-jti", exp))
	wantErr(t, "alice's jti after bob used it", f.s.ClientAssertionJWTValid(alice, "shared-jti"), fosite.ErrJTIKnown)
	wantErr(t, "bob's jti reused", f.s.SetClientAssertionJWT(bob, "shared-jti", exp), fosite.ErrJTIKnown)
	// Ids and jtis cannot be shifted into each other.
	must(t, f.s.SetClientAssertionJWT(storage.WithAssertionClient(ctx, "a:b"), "c", exp))
	must(t, f.s.SetClientAssertionJWT(storage.WithAssertionClient(ctx, "a"), "b:c", exp))
	if f.s.ClientAssertionJWTValid(ctx, "fresh-jti") == nil {
		t.Fatal("a jti checked without its client was accepted")
	}
	if f.s.SetClientAssertionJWT(ctx, "fresh-jti", exp) == nil {
		t.Fatal("a jti recorded without its client was accepted")
	}
}

// testTimestamps checks that instants survive the round trip exactly,
// whatever the column type and the session time zone.
func testTimestamps(t *testing.T, f *fixture) {
	ctx := f.ctx
	loc := time.FixedZone("UTC+5", 5*3600)
	at := time.Date(2031, 6, 7, 8, 9, 10, 123456000, loc)
	must(t, f.s.CreateLoginSession(ctx, &storage.LoginSession{IDHash: "h", Subject: "u", AuthTime: at, ExpiresAt: f.clock.Now().Add(time.Hour)}))
	l, err := f.s.LoginSession(ctx, "h")
	must(t, err)
	if !l.AuthTime.Equal(at) {
		t.Fatalf("auth_time %v, want %v", l.AuthTime, at)
	}
}
