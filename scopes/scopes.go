// Package scopes is the set of scopes this deployment offers, with the
// descriptions users are shown and the OpenID claims each scope releases.
package scopes

import (
	"fmt"
	"sort"
	"strings"
)

// Scope is one grantable scope.
type Scope struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Registry knows the configured scopes in their configured order.
type Registry struct {
	list   []Scope
	byName map[string]Scope
}

// New builds a registry; later entries override earlier descriptions.
func New(list []Scope) *Registry {
	r := &Registry{byName: map[string]Scope{}}
	for _, s := range list {
		if _, seen := r.byName[s.Name]; !seen {
			r.list = append(r.list, s)
		} else {
			for i := range r.list {
				if r.list[i].Name == s.Name {
					r.list[i] = s
				}
			}
		}
		r.byName[s.Name] = s
	}
	return r
}

// All returns every scope.
func (r *Registry) All() []Scope { return append([]Scope(nil), r.list...) }

// Names returns every scope name.
func (r *Registry) Names() []string {
	out := make([]string, len(r.list))
	for i, s := range r.list {
		out[i] = s.Name
	}
	return out
}

// Has reports whether name is offered.
func (r *Registry) Has(name string) bool { _, ok := r.byName[name]; return ok }

// Unknown returns the names that are not offered, sorted.
func (r *Registry) Unknown(names []string) []string {
	var out []string
	for _, n := range names {
		if !r.Has(n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Check fails naming every unknown scope.
func (r *Registry) Check(names []string) error {
	if u := r.Unknown(names); len(u) > 0 {
		return fmt.Errorf("unknown scope(s): %s", strings.Join(u, " "))
	}
	return nil
}

// Describe returns the registry entries for names, in request order.
func (r *Registry) Describe(names []string) []Scope {
	out := make([]Scope, 0, len(names))
	for _, n := range names {
		if s, ok := r.byName[n]; ok {
			out = append(out, s)
		}
	}
	return out
}

// claimsByScope is OpenID Connect Core §5.4.
var claimsByScope = map[string][]string{
	"profile": {"name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
		"profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at"},
	"email":   {"email", "email_verified"},
	"address": {"address"},
	"phone":   {"phone_number", "phone_number_verified"},
}

// Claims returns the subset of claims that the granted scopes release. A
// claim no granted scope covers is never released.
func Claims(granted []string, claims map[string]any) map[string]any {
	out := map[string]any{}
	for _, s := range granted {
		for _, c := range claimsByScope[s] {
			if v, ok := claims[c]; ok {
				out[c] = v
			}
		}
	}
	return out
}

// SupportedClaims lists every claim some scope can release (for discovery).
func SupportedClaims() []string {
	var out []string
	for _, cs := range claimsByScope {
		out = append(out, cs...)
	}
	sort.Strings(out)
	return out
}
