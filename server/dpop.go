package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

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

// resourceAuth authenticates an access token at a resource endpoint of
// ours (userinfo): Bearer for unbound tokens, DPoP plus a proof with ath
// for bound ones. Failures are written per RFC 6750 §3 / RFC 9449 §7.1.
func (s *Server) resourceAuth(c echo.Context, path string) (fosite.AccessRequester, *provider.Session, bool) {
	scheme, token, _ := strings.Cut(c.Request().Header.Get("Authorization"), " ")
	isDPoP := strings.EqualFold(scheme, "DPoP")
	if (!isDPoP && !strings.EqualFold(scheme, "Bearer")) || token == "" {
		s.challenge(c, "An access token in the Authorization header is required.")
		return nil, nil, false
	}
	sess := provider.NewSession()
	use, ar, err := s.oauth.IntrospectToken(c.Request().Context(), token, fosite.AccessToken, sess)
	if dbUnavailable(err) {
		// Not invalid_token: a client told that discards a valid token.
		_ = s.writeUnavailable(c, err)
		return nil, nil, false
	}
	if err != nil || use != fosite.AccessToken {
		s.challengeAs(c, isDPoP, "invalid_token", "The access token is invalid, expired or revoked.")
		return nil, nil, false
	}
	if sess.JKT == "" && !isDPoP {
		return ar, sess, true
	}
	if !isDPoP {
		s.challengeAs(c, true, "invalid_token", "This access token is DPoP-bound: present it with the DPoP scheme and a proof.")
		return nil, nil, false
	}
	proof, err := s.checkProof(c, path, token)
	if err == nil && proof == nil {
		err = dpop.ErrMissing
	}
	if err != nil {
		var de *dpop.Error
		if !errors.As(err, &de) {
			s.log.Error("dpop proof check", "err", err)
			de = &dpop.Error{Code: "invalid_dpop_proof", Desc: "the proof could not be checked"}
		}
		if de.Code == "use_dpop_nonce" {
			c.Response().Header().Set(dpop.NonceHeader, s.dpop.Nonce())
		}
		s.challengeAs(c, true, de.Code, "The DPoP proof is not acceptable: "+de.Desc+".")
		return nil, nil, false
	}
	if sess.JKT == "" {
		s.challengeAs(c, true, "invalid_token", "This access token is not DPoP-bound: present it as a Bearer token.")
		return nil, nil, false
	}
	if proof.JKT != sess.JKT {
		s.challengeAs(c, true, "invalid_token", "The DPoP proof key does not match the key the access token is bound to.")
		return nil, nil, false
	}
	s.setNonce(c)
	return ar, sess, true
}

// challenge answers 401 with both schemes offered (no error attribute when
// no credentials were sent, RFC 6750 §3.1).
func (s *Server) challenge(c echo.Context, desc string) {
	h := c.Response().Header()
	h.Add("WWW-Authenticate", `Bearer realm="latch"`)
	h.Add("WWW-Authenticate", fmt.Sprintf(`DPoP algs="%s"`, strings.Join(s.dpopAlgs(), " ")))
	_ = c.JSON(http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": desc})
}

func (s *Server) challengeAs(c echo.Context, dpopScheme bool, code, desc string) {
	v := fmt.Sprintf(`Bearer realm="latch", error=%q, error_description=%q`, code, desc)
	if dpopScheme {
		v = fmt.Sprintf(`DPoP error=%q, error_description=%q, algs="%s"`, code, desc, strings.Join(s.dpopAlgs(), " "))
	}
	c.Response().Header().Set("WWW-Authenticate", v)
	_ = c.JSON(http.StatusUnauthorized, map[string]string{"error": code, "error_description": desc})
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
