package server

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/latchhq/latch/endpoint"
	"github.com/latchhq/latch/provider"
	"github.com/latchhq/latch/storage"
)

const (
	// parPrefix is fosite's request_uri prefix (RFC 9126 §2.2).
	parPrefix = "urn:ietf:params:oauth:request_uri:"
)

// par is RFC 9126 pushed authorization: fosite authenticates the client and
// validates the request as at the authorization endpoint; Latch's own
// policy applies too, so a request that would be refused later is refused
// now. A DPoP proof sent with the push binds the code (RFC 9449 §10.1).
func (s *Server) par(c echo.Context) error {
	ctx := c.Request().Context()
	c.Response().Header().Set("Cache-Control", "no-store")
	r := c.Request()
	if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return s.parError(c, nil, fosite.ErrInvalidRequest.WithHint("Unable to parse the request body.").WithWrap(err))
	}
	// Client credentials authenticate the push; they are not authorization
	// parameters and do not count towards their limit.
	if err := rawChecks(r.Form, "client_secret", "client_assertion", "client_assertion_type"); err != nil {
		return s.parError(c, nil, err)
	}
	if _, ok := r.Form["request_uri"]; ok {
		// RFC 9126 §2.1; refused here so fosite never considers fetching it.
		return s.parError(c, nil, fosite.ErrInvalidRequest.WithHint("A pushed authorization request cannot carry request_uri."))
	}
	if ok, err := s.checkDocumentClient(c, r.Form.Get("client_id"), r.Form.Get("redirect_uri")); !ok {
		return err
	}
	ctx = storage.WithRequestedRedirect(ctx, r.Form.Get("redirect_uri"))
	ar, err := s.oauth.NewPushedAuthorizeRequest(ctx, r)
	if err = stateOptional(ar, err); err != nil {
		return s.parError(c, ar, err)
	}
	if ar.GetRequestedScopes().Has("openid") && r.Form.Get("redirect_uri") == "" {
		// fosite checks this only after the state it no longer insists on.
		return s.parError(c, ar, fosite.ErrInvalidRequest.WithHint("redirect_uri is required for OpenID Connect requests."))
	}
	if err := s.checkAuthorizeRequest(ar, false, true); err != nil {
		return s.parError(c, ar, err)
	}
	proof, err := s.checkProof(c, endpoint.PAR, "")
	if err != nil {
		return s.parError(c, ar, dpopOAuthError(err))
	}
	if proof != nil {
		form := ar.GetRequestForm()
		if jkt := form.Get("dpop_jkt"); jkt != "" && jkt != proof.JKT {
			return s.parError(c, ar, errInvalidProof("dpop_jkt does not match the key of the DPoP proof."))
		}
		form.Set("dpop_jkt", proof.JKT)
	}
	resp, err := s.oauth.NewPushedAuthorizeResponse(ctx, ar, provider.NewSession())
	if err != nil {
		return s.parError(c, ar, err)
	}
	s.oauth.WritePushedAuthorizeResponse(ctx, c.Response(), ar, resp)
	return nil
}

func (s *Server) parError(c echo.Context, ar fosite.AuthorizeRequester, err error) error {
	rfc := s.logFailure("pushed authorization request failed", err)
	s.errorHeaders(c, rfc)
	s.oauth.WritePushedAuthorizeError(c.Request().Context(), c.Response(), ar, err)
	return nil
}

func requiresPAR(c fosite.Client) bool {
	sc, ok := c.(*storage.Client)
	return ok && sc.RequirePushedAuthRequests
}

// resumableForm is the form kept while the user decides: only the
// authorization parameters Latch reads. A pushed request's parameters are
// already merged in, and its request_uri (spent now) is not among them, so
// the request is rebuilt from the parameters at resume.
func resumableForm(form url.Values) string {
	return storage.AuthorizationParams(form).Encode()
}

// validJKT accepts an unpadded base64url SHA-256 digest (43 characters).
func validJKT(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}
