package clients

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/apierror"
	"github.com/latchhq/latch/endpoint"
	"github.com/latchhq/latch/paging"
	"github.com/latchhq/latch/storage"
)

// Register mounts the clients and authorizations API on g (which must
// require an admin API key).
func (s *Service) Register(g *echo.Group) {
	g.POST(endpoint.Clients, s.handleCreate)
	g.GET(endpoint.Clients, s.handleList)
	g.GET(endpoint.Clients+"/:client_id", s.handleGet)
	g.PATCH(endpoint.Clients+"/:client_id", s.handlePatch)
	g.DELETE(endpoint.Clients+"/:client_id", s.handleDelete)
	g.POST(endpoint.Clients+"/:client_id/secret", s.handleRotate)
	g.GET(endpoint.Users+"/:user/authorizations", s.handleListAuthorizations)
	g.DELETE(endpoint.Users+"/:user/authorizations/:client_id", s.handleRevokeAuthorization)
	g.DELETE(endpoint.Users+"/:user/authorizations", s.handleRevokeAllAuthorizations)
}

// request is the JSON form of Metadata: jwks travels as an object.
type request struct {
	Metadata
	JWKS json.RawMessage `json:"jwks"`
}

func (r *request) metadata() (Metadata, error) {
	m := r.Metadata
	m.JWKS = ""
	if len(r.JWKS) > 0 && string(r.JWKS) != "null" {
		s, err := compactJSON(r.JWKS)
		if err != nil {
			return m, invalid("jwks", "%v", err)
		}
		m.JWKS = s
	}
	return m, nil
}

// View is a client as the API shows it: RFC 7591 fields, jwks as an object,
// and the secret only in the answer that created it.
type View struct {
	*storage.Client
	JWKS                  json.RawMessage `json:"jwks,omitempty"`
	ClientSecret          string          `json:"client_secret,omitempty"`
	ClientSecretExpiresAt *int64          `json:"client_secret_expires_at,omitempty"`
	// The sender-constraint switches shadow the stored ones so that false
	// is shown too: a reader must see that a client is not constrained.
	DPoPBoundAccessTokens     bool `json:"dpop_bound_access_tokens"`
	RequirePushedAuthRequests bool `json:"require_pushed_authorization_requests"`
	// Likewise a reader sees that a client asked for no sid.
	BackchannelLogoutSessionRequired bool `json:"backchannel_logout_session_required"`
}

// NewView wraps c; plain is its secret when just issued.
func NewView(c *storage.Client, plain string) View {
	v := View{Client: c, DPoPBoundAccessTokens: c.DPoPBoundAccessTokens, RequirePushedAuthRequests: c.RequirePushedAuthRequests,
		BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired}
	if c.JWKS != "" {
		v.JWKS = json.RawMessage(c.JWKS)
	}
	if plain != "" {
		never := int64(0) // RFC 7591 §3.2.1: 0 means the secret does not expire
		v.ClientSecret, v.ClientSecretExpiresAt = plain, &never
	}
	return v
}

// httpError maps service outcomes to the API's statuses.
func httpError(err error) error {
	var inv *InvalidError
	var ae *apierror.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &inv):
		return &apierror.Error{Status: http.StatusBadRequest, Code: inv.Code, Description: inv.Error()}
	case storage.IsNotFound(err):
		return apierror.NotFound("unknown client")
	case storage.IsConflict(err):
		return apierror.Conflict("a client with this client_id exists")
	case errors.Is(err, ErrNoSecret):
		return &apierror.Error{Status: http.StatusBadRequest, Code: "invalid_client_metadata", Description: err.Error()}
	default:
		return apierror.Internal(err)
	}
}

func (s *Service) handleCreate(c echo.Context) error {
	var req request
	if err := apierror.DecodeJSON(c.Request(), &req, true); err != nil {
		return err
	}
	if req.ClientID != "" {
		return httpError(invalid("client_id", "is assigned by Latch"))
	}
	m, err := req.metadata()
	if err != nil {
		return httpError(err)
	}
	cl, plain, err := s.Create(c.Request().Context(), m)
	if err != nil {
		return httpError(err)
	}
	return c.JSON(http.StatusCreated, NewView(cl, plain))
}

// ListPage is GET /api/clients's answer.
type ListPage struct {
	Clients    []View `json:"clients"`
	NextCursor string `json:"next_cursor"`
}

func (s *Service) handleList(c echo.Context) error {
	p, err := paging.Parse(c)
	if err != nil {
		return err
	}
	list, err := s.List(c.Request().Context(), c.QueryParam("owner"), p.Cursor, p.Limit+1)
	if err != nil {
		return httpError(err)
	}
	out := ListPage{Clients: []View{}, NextCursor: paging.Next(len(list), p.Limit, func(i int) string { return list[i].ID })}
	for i := range list {
		if i == p.Limit {
			break
		}
		out.Clients = append(out.Clients, NewView(&list[i], ""))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Service) handleGet(c echo.Context) error {
	cl, err := s.Get(c.Request().Context(), c.Param("client_id"))
	if err != nil {
		return httpError(err)
	}
	return c.JSON(http.StatusOK, NewView(cl, ""))
}

// handlePatch applies the fields present in the body over the stored
// metadata (JSON merge), then validates the result as a whole. The body is
// read first and merged inside the write's transaction, over the row as it
// is now: never over a cached copy another instance's change has outdated.
func (s *Service) handlePatch(c echo.Context) error {
	r := c.Request()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return &apierror.Error{Status: http.StatusRequestEntityTooLarge, Code: "invalid_request", Description: "body too large"}
		}
		return apierror.BadRequest("could not read the body")
	}
	updated, err := s.Patch(r.Context(), c.Param("client_id"), func(m *Metadata) error {
		req := request{Metadata: *m}
		if m.JWKS != "" {
			req.JWKS = json.RawMessage(m.JWKS)
		}
		again := r.Clone(r.Context())
		again.Body = io.NopCloser(bytes.NewReader(body))
		if err := apierror.DecodeJSON(again, &req, true); err != nil {
			return err
		}
		merged, err := req.metadata()
		*m = merged
		return err
	})
	if err != nil {
		return httpError(err)
	}
	return c.JSON(http.StatusOK, NewView(updated, ""))
}

func (s *Service) handleDelete(c echo.Context) error {
	if err := s.Delete(c.Request().Context(), c.Param("client_id")); err != nil {
		return httpError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// RotateRequest is the optional body of POST /api/clients/{id}/secret.
type RotateRequest struct {
	// GracePeriod keeps the old secret working this long ("1h"); absent
	// or "0s", the old secret stops working at once.
	GracePeriod string `json:"grace_period"`
}

// RotateResponse carries the new secret, shown only here.
type RotateResponse struct {
	ClientID                 string     `json:"client_id"`
	ClientSecret             string     `json:"client_secret"`
	ClientSecretExpiresAt    int64      `json:"client_secret_expires_at"`
	PreviousSecretValidUntil *time.Time `json:"previous_secret_valid_until,omitempty"`
}

func (s *Service) handleRotate(c echo.Context) error {
	var req RotateRequest
	if err := apierror.DecodeJSON(c.Request(), &req, false); err != nil {
		return err
	}
	var grace time.Duration
	if req.GracePeriod != "" {
		d, err := time.ParseDuration(req.GracePeriod)
		if err != nil {
			return httpError(invalid("grace_period", "must be a duration such as \"1h\" or \"30m\""))
		}
		grace = d
	}
	id := c.Param("client_id")
	plain, until, err := s.RotateSecret(c.Request().Context(), id, grace)
	if err != nil {
		return httpError(err)
	}
	return c.JSON(http.StatusOK, RotateResponse{ClientID: id, ClientSecret: plain, PreviousSecretValidUntil: until})
}

// AuthorizationsPage is GET /api/users/{user}/authorizations's answer.
type AuthorizationsPage struct {
	Authorizations []storage.UserGrant `json:"authorizations"`
}

func (s *Service) handleListAuthorizations(c echo.Context) error {
	list, err := s.Authorizations(c.Request().Context(), c.Param("user"))
	if err != nil {
		return httpError(err)
	}
	if list == nil {
		list = []storage.UserGrant{}
	}
	return c.JSON(http.StatusOK, AuthorizationsPage{Authorizations: list})
}

func (s *Service) handleRevokeAllAuthorizations(c echo.Context) error {
	_, err := s.RevokeAllAuthorizations(c.Request().Context(), c.Param("user"))
	if err := revocationFailed(err); err != nil {
		return err
	}
	if err != nil {
		return httpError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// revocationFailed is the answer to a revocation the database aborted
// (deadlock, after the store's own retries) or could not reach: what was
// revoked stays revoked, and a retry finishes the rest. Not httpError's
// 409, which speaks of client ids. nil for any other outcome.
func revocationFailed(err error) error {
	if storage.IsConflict(err) || errors.Is(err, storage.ErrUnavailable) {
		return &apierror.Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
			Description: "the revocation could not complete; retry", Cause: err}
	}
	return nil
}

func (s *Service) handleRevokeAuthorization(c echo.Context) error {
	err := s.RevokeAuthorization(c.Request().Context(), c.Param("user"), c.Param("client_id"))
	if storage.IsNotFound(err) {
		return apierror.NotFound("this user has no authorization for this client")
	}
	if err := revocationFailed(err); err != nil {
		return err
	}
	if err != nil {
		return httpError(err)
	}
	return c.NoContent(http.StatusNoContent)
}
