package approval

import (
	"net/http"

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
	if err := apierror.DecodeJSON(c.Request(), &req, true); err != nil {
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
	if err := apierror.DecodeJSON(c.Request(), &req, false); err != nil {
		return err
	}
	u, err := s.Deny(c.Request().Context(), c.Param("id"), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"redirect_uri": u})
}
