package approval

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/apierror"
	"github.com/latchhq/latch/endpoint"
)

// Register mounts the host app's API on g (which must already require an
// admin API key): GET /auth_session/:id, POST .../approve, POST .../deny.
func (s *Service) Register(g *echo.Group) {
	g.GET(endpoint.AuthSession+"/:id", s.handleGet)
	g.POST(endpoint.AuthSession+"/:id/approve", s.handleApprove)
	g.POST(endpoint.AuthSession+"/:id/deny", s.handleDeny)
}

func (s *Service) handleGet(c echo.Context) error {
	v, err := s.View(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Service) handleApprove(c echo.Context) error {
	var req ApproveRequest
	if err := DecodeJSON(c.Request(), &req, true); err != nil {
		return err
	}
	u, err := s.Approve(c.Request().Context(), c.Param("id"), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"redirect_uri": u})
}

func (s *Service) handleDeny(c echo.Context) error {
	var req DenyRequest
	if err := DecodeJSON(c.Request(), &req, false); err != nil {
		return err
	}
	u, err := s.Deny(c.Request().Context(), c.Param("id"), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"redirect_uri": u})
}

// DecodeJSON reads one JSON object strictly: unknown fields and trailing
// data are errors, so a typo in a field name is caught, not ignored.
// An empty body is accepted unless required.
func DecodeJSON(r *http.Request, v any, required bool) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return apierror.BadRequest("Content-Type must be application/json")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			if required {
				return apierror.BadRequest("a JSON body is required")
			}
			return nil
		}
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return &apierror.Error{Status: http.StatusRequestEntityTooLarge, Code: "invalid_request", Description: "body too large"}
		}
		return apierror.BadRequest("malformed JSON body: %s", jsonProblem(err))
	}
	if dec.More() {
		return apierror.BadRequest("malformed JSON body: trailing data")
	}
	return nil
}

// jsonProblem keeps decoder messages short and free of Go type names.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("field %q has the wrong type", typeErr.Field)
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	return msg
}
