package approval

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The status → sentinel mapping and the redirect guard; the calls
// themselves are tested against a real Latch in e2e/sdk.
func TestErrorsAndRedirectGuard(t *testing.T) {
	var status int
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	c, err := New(Config{Issuer: srv.URL, APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	for st, want := range map[int]error{400: ErrBadRequest, 401: ErrUnauthorized, 404: ErrNotFound, 409: ErrConflict, 410: ErrExpired} {
		status, body = st, `{"error":"x","error_description":"why"}`
		_, err := c.Session(context.Background(), "id")
		if !errors.Is(err, want) {
			t.Errorf("%d: %v is not %v", st, err, want)
		}
		var e *Error
		if !errors.As(err, &e) || e.Description != "why" || e.Status != st {
			t.Errorf("%d: %#v", st, err)
		}
		for _, other := range []error{ErrBadRequest, ErrUnauthorized, ErrNotFound, ErrConflict, ErrExpired} {
			if other != want && errors.Is(err, other) {
				t.Errorf("%d also matches %v", st, other)
			}
		}
	}
	status, body = 200, `{"redirect_uri":"https://evil.example/cb?code=x"}`
	if _, err := c.Approve(context.Background(), "id", Approval{User: "u"}); err == nil {
		t.Fatal("a redirect away from the issuer was accepted")
	}
	status, body = 200, `{"redirect_uri":"`+srv.URL+`.evil.example/x"}`
	if _, err := c.Deny(context.Background(), "id", ""); err == nil {
		t.Fatal("a look-alike host was accepted")
	}
	status, body = 200, `{"redirect_uri":"`+srv.URL+`/oauth2/authorize/resume?v=1"}`
	if u, err := c.Deny(context.Background(), "id", ""); err != nil || u != srv.URL+"/oauth2/authorize/resume?v=1" {
		t.Fatal(u, err)
	}
}

func TestApprovalBody(t *testing.T) {
	b := Approval{User: "u"}.body()
	if len(b) != 1 || b["user"] != "u" {
		t.Fatalf("zero values must be left out (Latch treats a missing auth_time as now): %v", b)
	}
	b = Approval{User: "u", Scopes: []string{}, Remember: true, ACR: "1"}.body()
	if s, ok := b["scopes"].([]string); !ok || len(s) != 0 || b["remember"] != true || b["acr"] != "1" {
		t.Fatalf("%v", b)
	}
}
