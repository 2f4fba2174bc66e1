package logout

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/apierror"
	"github.com/latchhq/latch/endpoint"
	"github.com/latchhq/latch/storage"
)

// Register mounts DELETE /users/{user}/sessions on g (which must require
// an admin API key): the host app ends every Latch login session of a user
// who logged out of it or was disabled.
func (s *Service) Register(g *echo.Group) {
	g.DELETE(endpoint.Users+"/:user/sessions", s.handleEndUserSessions)
}

func (s *Service) handleEndUserSessions(c echo.Context) error {
	user := c.Param("user")
	if strings.TrimSpace(user) == "" || len(user) > 255 {
		return apierror.BadRequest("user must be 1 to 255 characters")
	}
	if _, err := s.End(c.Request().Context(), storage.SessionSelector{Subject: user}, ReasonAPI); err != nil {
		if storage.IsConflict(err) {
			// The database aborted the end in favour of a concurrent
			// transaction; nothing ended, and a retry will.
			return apierror.Unavailable(err)
		}
		return apierror.Internal(err)
	}
	return c.NoContent(http.StatusNoContent)
}
