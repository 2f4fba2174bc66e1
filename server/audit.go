package server

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/provider"
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

// grantEvent is the success event of a token request: which grant was
// redeemed, by which client, for whom, with which scopes.
func grantEvent(r *http.Request, ar fosite.AccessRequester) audit.Event {
	grantType := r.PostForm.Get("grant_type")
	ev := tokenEvent(r, ar)
	switch grantType {
	case provider.GrantAuthorizationCode:
		ev.Name = audit.CodeExchanged
	case provider.GrantRefreshToken:
		ev.Name = audit.TokenRefreshed
	default:
		ev.Name = audit.TokenIssued
	}
	if ar != nil {
		ev.Details = map[string]any{"grant_type": grantType, "scopes": []string(ar.GetGrantedScopes())}
	}
	return ev
}

// replayEvent is the event of a spent code or refresh token presented
// again (the family is revoked).
func replayEvent(r *http.Request, ar fosite.AccessRequester) audit.Event {
	grantType := r.PostForm.Get("grant_type")
	ev := tokenEvent(r, ar)
	ev.Name, ev.Outcome = audit.TokenReplayed, audit.Failure
	if grantType == provider.GrantAuthorizationCode {
		ev.Name = audit.CodeReplayed
	}
	ev.Details = map[string]any{"grant_type": grantType, "action": "grant revoked"}
	return ev
}

func tokenEvent(r *http.Request, ar fosite.AccessRequester) audit.Event {
	ev := audit.Event{ActorType: audit.ActorClient, ClientID: tokenClientID(r, ar)}
	ev.ActorID = ev.ClientID
	if ar != nil && ar.GetSession() != nil && r.PostForm.Get("grant_type") != provider.GrantClientCredentials {
		ev.User = ar.GetSession().GetSubject()
	}
	return ev
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
