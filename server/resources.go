package server

import (
	"errors"
	"net/http"
	"slices"

	"github.com/ory/fosite"

	"github.com/latchhq/latch/provider"
	"github.com/latchhq/latch/resources"
)

// errInvalidTarget is RFC 8707 §2's error for a resource the server does
// not know or will not issue a token for.
func errInvalidTarget(desc string) error {
	return &fosite.RFC6749Error{ErrorField: "invalid_target", DescriptionField: desc, CodeField: http.StatusBadRequest}
}

// requestedResources resolves an authorization (or client_credentials)
// request's resource parameters against the registry and checks the
// requested scopes against what those resources accept.
func (s *Server) requestedResources(requested, scopes []string) ([]string, error) {
	res, err := s.resources.Resolve(requested)
	var unknown *resources.UnknownError
	if errors.As(err, &unknown) {
		return nil, errInvalidTarget("The resource " + unknown.URI + " is not a resource server of this authorization server.")
	}
	if err != nil {
		return nil, err
	}
	if err := s.resources.CheckScopes(res, scopes); err != nil {
		return nil, fosite.ErrInvalidScope.WithHint(err.Error() + ".")
	}
	return res, nil
}

// grantResources sets the resources of the access token a token request
// gets (RFC 8707 §2.2). client_credentials names them itself (or gets the
// default); a code or refresh request gets every resource authorised at
// the authorization request, or narrows to some of them, never more: the
// grant keeps the full set, so a later refresh can ask for another.
func (s *Server) grantResources(ar fosite.AccessRequester) error {
	sess, ok := ar.GetSession().(*provider.Session)
	if !ok {
		return nil
	}
	requested := ar.GetRequestForm()["resource"]
	if ar.GetGrantTypes().ExactOne(provider.GrantClientCredentials) {
		res, err := s.requestedResources(requested, ar.GetRequestedScopes())
		if err != nil {
			return err
		}
		sess.Resources, sess.TokenResources = res, res
		return nil
	}
	var narrowed []string
	for _, u := range requested {
		if !s.resources.Known(u) {
			return errInvalidTarget("The resource " + u + " is not a resource server of this authorization server.")
		}
		if !slices.Contains(sess.Resources, u) {
			return errInvalidTarget("The resource " + u + " was not authorised for this grant.")
		}
		if !slices.Contains(narrowed, u) {
			narrowed = append(narrowed, u)
		}
	}
	if len(narrowed) == 0 {
		narrowed = slices.Clone(sess.Resources)
	}
	sess.TokenResources = narrowed
	return nil
}
