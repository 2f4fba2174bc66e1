package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/latchhq/latch/audit"
)

// auditContext carries the caller's address to whatever records an audit
// event during the request. It is the connection's peer address: forwarded
// headers are whatever the caller says they are, so the log never trusts them.
func auditContext(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ip := echo.ExtractIPDirect()(c.Request())
		c.SetRequest(c.Request().WithContext(audit.WithIP(c.Request().Context(), ip)))
		return next(c)
	}
}

// auditToken records the outcome of a token request: which grant was
// redeemed, or that a spent code or refresh token came back.
func (s *Server) auditToken(ctx context.Context, r *http.Request, ar fosite.AccessRequester, err error) {
	grantType := r.PostForm.Get("grant_type")
	ev := audit.Event{ActorType: audit.ActorClient, ClientID: tokenClientID(r, ar)}
	ev.ActorID = ev.ClientID
	if ar != nil && ar.GetSession() != nil && grantType != "client_credentials" {
		ev.User = ar.GetSession().GetSubject()
	}
	if err == nil {
		switch grantType {
		case "authorization_code":
			ev.Name = audit.CodeExchanged
		case "refresh_token":
			ev.Name = audit.TokenRefreshed
		default:
			ev.Name = audit.TokenIssued
		}
		if ar != nil {
			ev.Details = map[string]any{"grant_type": grantType, "scopes": []string(ar.GetGrantedScopes())}
		}
		s.audit.Record(ctx, ev)
		return
	}
	if !replayed(err) {
		return
	}
	ev.Name, ev.Outcome = audit.TokenReplayed, audit.Failure
	if grantType == "authorization_code" {
		ev.Name = audit.CodeReplayed
	}
	ev.Details = map[string]any{"grant_type": grantType, "action": "grant revoked"}
	s.audit.Record(ctx, ev)
}

// replayed tells a spent code or refresh token presented again (sequential
// replay reported by fosite, or a lost race mapped by raceLost).
func replayed(err error) bool {
	if errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || errors.Is(err, fosite.ErrInactiveToken) {
		return true
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	return rfc.ErrorField == fosite.ErrInvalidGrant.ErrorField &&
		(strings.Contains(rfc.HintField, "already been used") || strings.Contains(rfc.HintField, "already used"))
}

// tokenClientID names the client of a token request, authenticated or not
// (only the id: never the credential).
func tokenClientID(r *http.Request, ar fosite.AccessRequester) string {
	if ar != nil && ar.GetClient() != nil {
		return ar.GetClient().GetID()
	}
	if id, _, ok := r.BasicAuth(); ok {
		return id
	}
	return r.PostForm.Get("client_id")
}

// auditRevoke records a successful RFC 7009 revocation under the client
// that authenticated (never the raw Basic user name, which is still
// form-encoded and absent for private_key_jwt).
func (s *Server) auditRevoke(ctx context.Context, r *http.Request, clientID string) {
	s.audit.Record(ctx, audit.Event{Name: audit.TokenRevoked, ActorType: audit.ActorClient, ActorID: clientID, ClientID: clientID,
		Details: map[string]any{"token_type_hint": r.PostForm.Get("token_type_hint")}})
}
