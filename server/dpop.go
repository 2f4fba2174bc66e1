package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/latchhq/latch/dpop"
	"github.com/latchhq/latch/keys"
	"github.com/latchhq/latch/provider"
	"github.com/latchhq/latch/storage"
)

// checkProof verifies the request's DPoP header for the endpoint at path;
// no header gives (nil, nil). URLs are built from the issuer, never from
// Host headers, so a proof is bound to the URL clients are told to use.
func (s *Server) checkProof(c echo.Context, path, accessToken string) (*dpop.Proof, error) {
	vals := c.Request().Header.Values(dpop.HeaderName)
	if len(vals) == 0 || s.dpop == nil {
		return nil, nil
	}
	return s.dpop.Verify(c.Request().Context(), dpop.Request{
		Proofs: vals, Method: c.Request().Method, URL: s.opt.Issuer + path, AccessToken: accessToken,
	})
}

// dpopOAuthError turns a proof failure into the token endpoint's error.
func dpopOAuthError(err error) error {
	var de *dpop.Error
	if !errors.As(err, &de) {
		return fosite.ErrServerError.WithWrap(err)
	}
	return &fosite.RFC6749Error{ErrorField: de.Code, DescriptionField: "The DPoP proof is not acceptable: " + de.Desc + ".", CodeField: http.StatusBadRequest}
}

func errInvalidProof(desc string) error {
	return &fosite.RFC6749Error{ErrorField: "invalid_dpop_proof", DescriptionField: desc, CodeField: http.StatusBadRequest}
}

// bindToken applies DPoP to a token request: a grant already bound (by
// dpop_jkt at authorization, or an earlier DPoP token in a refreshed
// family) needs a proof with that key; a client registered with
// dpop_bound_access_tokens needs a proof; a proof binds the new tokens.
func bindToken(ar fosite.AccessRequester, proof *dpop.Proof) error {
	sess, ok := ar.GetSession().(*provider.Session)
	if !ok {
		return fosite.ErrServerError.WithDebug("unexpected session type")
	}
	if proof == nil {
		if sess.JKT != "" {
			return errInvalidProof("This grant is bound to a DPoP key: send a DPoP proof made with it.")
		}
		if c, ok := ar.GetClient().(*storage.Client); ok && c.DPoPBoundAccessTokens {
			return errInvalidProof("This client must use DPoP: send a DPoP proof.")
		}
		return nil
	}
	if sess.JKT != "" && sess.JKT != proof.JKT {
		return errInvalidProof("The DPoP proof is signed by a different key than the one this grant is bound to.")
	}
	sess.JKT = proof.JKT
	return nil
}

// withIDTokenAlg signs the ID tokens made under ctx with the client's
// id_token_signed_response_alg, else the server's default (RS256 unless
// configured otherwise, as OpenID Connect Registration §2 defines).
func (s *Server) withIDTokenAlg(ctx context.Context, client fosite.Client) context.Context {
	alg := s.opt.IDTokenSigningAlg
	if c, ok := client.(*storage.Client); ok && c.IDTokenSignedResponseAlg != "" {
		alg = c.IDTokenSignedResponseAlg
	}
	if alg == "" {
		return ctx
	}
	return keys.WithIDTokenAlg(ctx, alg)
}

// setNonce hands out the current nonce when nonces are required, so a
// client learns the next one before its current one expires.
func (s *Server) setNonce(c echo.Context) {
	if s.dpop != nil && s.dpop.NonceRequired() {
		c.Response().Header().Set(dpop.NonceHeader, s.dpop.Nonce())
	}
}

func (s *Server) dpopAlgs() []string {
	if s.dpop == nil {
		return nil
	}
	return s.dpop.Algs()
}

// errorHeaders adds what an OAuth error from a client-authenticated
// endpoint needs: WWW-Authenticate for a failed client authentication (RFC
// 6749 §5.2), which is also counted against the rate limits, and a fresh
// nonce with use_dpop_nonce (RFC 9449 §8).
func (s *Server) errorHeaders(c echo.Context, rfc *fosite.RFC6749Error) {
	if rfc.ErrorField == fosite.ErrInvalidClient.ErrorField {
		c.Response().Header().Set("WWW-Authenticate", `Basic realm="latch", charset="UTF-8"`)
		s.credentialFailed(c)
	}
	if rfc.ErrorField == "use_dpop_nonce" && s.dpop != nil {
		c.Response().Header().Set(dpop.NonceHeader, s.dpop.Nonce())
	}
}
