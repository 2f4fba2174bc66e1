package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/storage"
)

// retryAfter is how long a client is told to wait while the database is
// away: long enough not to hammer it, short enough for a failover.
const retryAfter = 5

// dbUnavailable reports a failure to reach the database at all. Such a
// request was fine and may be retried; answering it as a bad token, an
// unknown client or an opaque 500 would make clients discard valid tokens
// or give up.
func dbUnavailable(err error) bool { return errors.Is(err, storage.ErrUnavailable) }

// writeUnavailable answers 503 temporarily_unavailable with Retry-After, in
// the JSON shape every endpoint here uses for errors.
// It logs one line per retryAfter, not one per request: an outage under
// load would otherwise flood the log with the same news.
func (s *Server) writeUnavailable(c echo.Context, err error) error {
	s.logOutage(c, err)
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Retry-After", strconv.Itoa(retryAfter))
	return c.JSON(http.StatusServiceUnavailable, map[string]string{
		"error": "temporarily_unavailable", "error_description": "The database is unreachable; retry shortly.",
	})
}

// unavailable is writeUnavailable for a person's browser (authorize,
// resume, logout): a page saying to try again, never a redirect the client
// would take as a final answer; JSON when the caller asks for it.
func (s *Server) unavailable(c echo.Context, err error) error {
	if strings.Contains(c.Request().Header.Get("Accept"), "application/json") {
		return s.writeUnavailable(c, err)
	}
	s.logOutage(c, err)
	c.Response().Header().Set("Retry-After", strconv.Itoa(retryAfter))
	return browserPage(c, http.StatusServiceUnavailable, "Sign-in is temporarily unavailable. Please try again in a moment.")
}

// logOutage logs one line per retryAfter, not one per request: an outage
// under load would otherwise flood the log with the same news.
func (s *Server) logOutage(c echo.Context, err error) {
	now := time.Now().Unix()
	if last := s.outageLogged.Load(); now-last >= retryAfter && s.outageLogged.CompareAndSwap(last, now) {
		s.log.Warn("database unavailable; answering 503", "method", c.Request().Method, "path", c.Path(), "err", fmt.Sprint(err))
	}
}
