package clients

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/latchhq/latch/apierror"
	"github.com/latchhq/latch/scopes"
)

// FuzzClientMetadata feeds registration bodies through the API's decoding
// and validation. Every body is either refused with a 4xx naming the
// problem, or yields a client whose own metadata validates again to the
// same client: what Latch stores, it accepts back (a PATCH of nothing
// changes nothing).
func FuzzClientMetadata(f *testing.F) {
	const issuer = "https://latch.example"
	s := New(nil, nil, scopes.New([]scopes.Scope{{Name: "openid"}, {Name: "profile"}, {Name: "offline_access"}}),
		func(aud string) bool { return aud == issuer })
	for _, seed := range []string{
		`{"client_name":"Photos","redirect_uris":["https://photos.example/cb"],"grant_types":["authorization_code","refresh_token"],"scope":"openid profile"}`,
		`{"redirect_uris":["http://127.0.0.1/cb","com.example.app:/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code"]}`,
		`{"grant_types":["client_credentials"],"audience":["https://latch.example"],"contacts":["ops@example.com"]}`,
		`{"grant_types":["client_credentials"],"audience":["another-client"]}`,
		`{"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","use":"sig","alg":"ES256"}]},"token_endpoint_auth_signing_alg":"ES256"}`,
		`{"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://a.example/jwks"}`,
		`{"redirect_uris":["https://a.example/cb#f"],"logo_uri":"http://x","dpop_bound_access_tokens":true,"require_pushed_authorization_requests":true}`,
		`{"redirect_uris":["https://a.example/cb"],"id_token_signed_response_alg":"RS256","jwks":null}`,
		`{"client_name":"\u0000","redirect_uris":[""],"grant_types":[],"response_types":null}`,
		`{"jwks":{"keys":[]}}`, `{"jwks":[1]}`, `{"unknown":1}`, `{}`, `[]`, `null`, `{"client_name":1}`, `{} {}`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req request
		r := httptest.NewRequest("POST", "/api/clients", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if err := apierror.DecodeJSON(r, &req, true); err != nil {
			mustBeClientError(t, body, err)
			return
		}
		m, err := req.metadata()
		if err != nil {
			mustBeClientError(t, body, err)
			return
		}
		c, err := s.Build(m)
		if err != nil {
			mustBeClientError(t, body, err)
			return
		}
		again, err := s.Build(MetadataOf(c))
		if err != nil {
			t.Fatalf("%s: built a client whose own metadata is refused: %v", body, err)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("%s: rebuilding from stored metadata changed the client:\n%+v\n%+v", body, c, again)
		}
	})
}

func mustBeClientError(t *testing.T, body []byte, err error) {
	t.Helper()
	var inv *InvalidError
	var ae *apierror.Error
	switch {
	case errors.As(err, &inv):
		if inv.Field == "" || inv.Msg == "" {
			t.Fatalf("%s: refusal without a field or reason: %#v", body, inv)
		}
	case errors.As(err, &ae):
		if ae.Status < 400 || ae.Status >= 500 || ae.Description == "" {
			t.Fatalf("%s: refusal %d %q", body, ae.Status, ae.Description)
		}
	default:
		t.Fatalf("%s: error the API would answer with a 500: %v", body, err)
	}
}
