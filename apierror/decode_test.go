package apierror_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchhq/latch/apierror"
)

// TestDecodeJSON: every request body the API refuses is refused with the
// API's own error shape and a description that names the problem without
// Go type names; an accepted body fills the value.
func TestDecodeJSON(t *testing.T) {
	type body struct {
		User   string   `json:"user"`
		Scopes []string `json:"scopes"`
	}
	cases := []struct {
		name, contentType, body string
		required                bool
		maxBytes                int64
		status                  int
		description             string
		want                    body
	}{
		{name: "object", body: `{"user":"u1","scopes":["openid"]}`, required: true, want: body{User: "u1", Scopes: []string{"openid"}}},
		{name: "charset parameter", contentType: "application/json; charset=utf-8", body: `{"user":"u1"}`, want: body{User: "u1"}},
		{name: "no content type", contentType: "-", body: `{"user":"u1"}`, want: body{User: "u1"}},
		{name: "empty, optional", body: ``},
		{name: "empty, required", body: ``, required: true, status: 400, description: "a JSON body is required"},
		{name: "form body", contentType: "application/x-www-form-urlencoded", body: `user=u1`, status: 400, description: "Content-Type must be application/json"},
		{name: "unknown field", body: `{"user":"u1","usr":"x"}`, status: 400, description: `malformed JSON body: unknown field "usr"`},
		{name: "wrong type", body: `{"user":7}`, status: 400, description: `malformed JSON body: field "user" has the wrong type`},
		{name: "trailing data", body: `{"user":"u1"} {"user":"u2"}`, status: 400, description: "malformed JSON body: trailing data"},
		{name: "truncated", body: `{"user": "u1",`, status: 400, description: "malformed JSON body: unexpected EOF"},
		{name: "too large", body: `{"user":"` + strings.Repeat("a", 64) + `"}`, maxBytes: 16, status: 413, description: "body too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			switch tc.contentType {
			case "":
				r.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				r.Header.Set("Content-Type", tc.contentType)
			}
			if tc.maxBytes > 0 {
				r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, tc.maxBytes)
			}
			var got body
			err := apierror.DecodeJSON(r, &got, tc.required)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				if got.User != tc.want.User || strings.Join(got.Scopes, " ") != strings.Join(tc.want.Scopes, " ") {
					t.Errorf("decoded %+v, want %+v", got, tc.want)
				}
				return
			}
			var ae *apierror.Error
			if !errors.As(err, &ae) {
				t.Fatalf("DecodeJSON: %v, want an *apierror.Error", err)
			}
			if ae.Status != tc.status || ae.Code != "invalid_request" || ae.Description != tc.description {
				t.Errorf("DecodeJSON: %d %s %q, want %d invalid_request %q", ae.Status, ae.Code, ae.Description, tc.status, tc.description)
			}
		})
	}
}
