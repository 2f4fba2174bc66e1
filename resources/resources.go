// Package resources is the registry of resource servers (RFC 8707) this
// deployment issues tokens for: which `resource` values a request may
// name, which one applies when it names none, and which scopes each
// accepts.
package resources

import (
	"fmt"
	"slices"
	"strings"
)

// Resource is one resource server. URI is its identifier, compared
// character for character; Name is what a consent screen shows; Scopes,
// when set, are the only scopes (besides OpenID Connect's) a request
// for it may ask for.
type Resource struct {
	URI    string   `json:"uri"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes,omitempty"`
}

// Registry knows the configured resources.
type Registry struct {
	list []Resource
	def  string
}

// New builds a registry; def is the resource of requests naming none
// ("" for none). The configuration has checked both.
func New(list []Resource, def string) *Registry {
	return &Registry{list: slices.Clone(list), def: def}
}

// UnknownError names a resource the registry does not hold; it is an
// RFC 8707 invalid_target.
type UnknownError struct{ URI string }

func (e *UnknownError) Error() string {
	return fmt.Sprintf("resource %q is not a resource server of this authorization server", e.URI)
}

// Get returns the resource with exactly this URI.
func (r *Registry) Get(uri string) (Resource, bool) {
	if r == nil {
		return Resource{}, false
	}
	i := slices.IndexFunc(r.list, func(x Resource) bool { return x.URI == uri })
	if i < 0 {
		return Resource{}, false
	}
	return r.list[i], true
}

// Known reports whether uri names a registered resource.
func (r *Registry) Known(uri string) bool { _, ok := r.Get(uri); return ok }

// Default is the resource of requests naming none, or "".
func (r *Registry) Default() string {
	if r == nil {
		return ""
	}
	return r.def
}

// Resolve turns a request's resource parameters into the resources it
// asks for: each must be registered (an *UnknownError otherwise), repeats
// count once, and none at all means the default (nil without one).
func (r *Registry) Resolve(requested []string) ([]string, error) {
	var out []string
	for _, u := range requested {
		if !r.Known(u) {
			return nil, &UnknownError{URI: u}
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	if len(out) == 0 && r.Default() != "" {
		out = []string{r.Default()}
	}
	return out, nil
}

// openIDScopes are about the user, not any resource server: every
// resource request may carry them.
var openIDScopes = []string{"openid", "profile", "email", "offline_access"}

// CheckScopes refuses a scope that none of the requested resources
// accepts. A resource without a scope list accepts every scope.
func (r *Registry) CheckScopes(resources, scopes []string) error {
	if len(resources) == 0 {
		return nil
	}
	var refused []string
	for _, sc := range scopes {
		if slices.Contains(openIDScopes, sc) {
			continue
		}
		ok := slices.ContainsFunc(resources, func(u string) bool {
			res, _ := r.Get(u)
			return len(res.Scopes) == 0 || slices.Contains(res.Scopes, sc)
		})
		if !ok {
			refused = append(refused, sc)
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("scope(s) %s are not accepted by the requested resource(s) %s", strings.Join(refused, " "), strings.Join(resources, " "))
	}
	return nil
}

// Describe returns the registry entries for uris, in order; a URI no
// longer registered is described by itself.
func (r *Registry) Describe(uris []string) []Resource {
	out := make([]Resource, 0, len(uris))
	for _, u := range uris {
		res, ok := r.Get(u)
		if !ok {
			res = Resource{URI: u, Name: u}
		}
		if res.Name == "" {
			res.Name = u
		}
		out = append(out, res)
	}
	return out
}
