package scopes

import (
	"reflect"
	"testing"
)

func TestClaimsFilteredByScope(t *testing.T) {
	all := map[string]any{"email": "a@b", "email_verified": true, "name": "Ann", "secret_flag": 1}
	cases := []struct {
		granted []string
		want    map[string]any
	}{
		{[]string{"openid"}, map[string]any{}},
		{[]string{"openid", "email"}, map[string]any{"email": "a@b", "email_verified": true}},
		{[]string{"profile"}, map[string]any{"name": "Ann"}},
		{[]string{"profile", "email"}, map[string]any{"email": "a@b", "email_verified": true, "name": "Ann"}},
	}
	for _, c := range cases {
		if got := Claims(c.granted, all); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Claims(%v) = %v, want %v", c.granted, got, c.want)
		}
	}
}

func TestRegistry(t *testing.T) {
	r := New([]Scope{{"openid", "a"}, {"api:read", "Read"}, {"openid", "b"}})
	if got := r.Names(); !reflect.DeepEqual(got, []string{"openid", "api:read"}) {
		t.Fatalf("Names = %v", got)
	}
	if r.Describe([]string{"openid"})[0].Description != "b" {
		t.Error("later description must win")
	}
	if err := r.Check([]string{"openid", "nope", "zz"}); err == nil || err.Error() != "unknown scope(s): nope zz" {
		t.Errorf("Check = %v", err)
	}
}
