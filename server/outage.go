package server

import (
	"errors"
	"net/http"
	"strconv"
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
	now := time.Now().Unix()
	if last := s.outageLogged.Load(); now-last >= retryAfter && s.outageLogged.CompareAndSwap(last, now) {
		s.log.Warn("database unavailable; answering 503", "method", c.Request().Method, "path", c.Path(), "err", err.Error())
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Retry-After", strconv.Itoa(retryAfter))
	return c.JSON(http.StatusServiceUnavailable, map[string]string{
		"error": "temporarily_unavailable", "error_description": "The database is unreachable; retry shortly.",
	})
}
