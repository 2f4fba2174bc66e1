package server

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/latchhq/latch/dpop"
	"github.com/latchhq/latch/endpoint"
	"github.com/latchhq/latch/provider"
	"github.com/latchhq/latch/scopes"
)

// userinfo returns the claims the host app gave at approval, filtered by the
// granted scopes. The access token comes only from the Authorization header,
// as a Bearer token or, when DPoP-bound, with the DPoP scheme and a proof.
func (s *Server) userinfo(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	origin := c.Request().Header.Get("Origin")
	if origin != "" {
		// Until the token names its client, a registered origin may read
		// the answer (a 401 tells a page to refresh); see cors.go.
		c.Response().Header().Add("Vary", "Origin")
		if s.originRegistered(c, origin) {
			allowOrigin(c, origin)
		}
	}
	ar, sess, ok := s.resourceAuth(c, endpoint.Userinfo)
	if !ok {
		return nil
	}
	if origin != "" && !s.clientAllows(c, ar.GetClient().GetID(), origin) {
		c.Response().Header().Del("Access-Control-Allow-Origin")
		c.Response().Header().Del("Access-Control-Expose-Headers")
	}
	if !ar.GetGrantedScopes().Has("openid") {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="latch", error="insufficient_scope", scope="openid"`)
		return c.JSON(http.StatusForbidden, map[string]string{"error": "insufficient_scope", "error_description": "The access token was not granted the openid scope."})
	}
	claims := scopes.Claims(ar.GetGrantedScopes(), sess.UserClaims)
	maps.Copy(claims, sess.ExtraIDClaims)
	claims["sub"] = sess.GetSubject()
	return c.JSON(http.StatusOK, claims)
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
