package audit

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/apierror"
	"github.com/latchhq/latch/paging"
	"github.com/latchhq/latch/storage"
)

// Register mounts GET /audit on g (which must require an admin API key).
func (r *Recorder) Register(g *echo.Group) {
	g.GET("/audit", r.handleList)
}

// Page is GET /api/audit's answer.
type Page struct {
	Events     []storage.AuditEvent `json:"events"`
	NextCursor string               `json:"next_cursor"`
}

func (r *Recorder) handleList(c echo.Context) error {
	p, err := paging.Parse(c)
	if err != nil {
		return err
	}
	f := storage.AuditFilter{
		Subject: c.QueryParam("user"), ClientID: c.QueryParam("client_id"), Event: c.QueryParam("event"),
		Limit: p.Limit + 1,
	}
	if f.Event != "" && !slices.Contains(Events, f.Event) {
		return apierror.BadRequest("unknown event %q", f.Event)
	}
	if p.Cursor != "" {
		if f.Before, err = strconv.ParseInt(p.Cursor, 10, 64); err != nil || f.Before <= 0 {
			return apierror.BadRequest("cursor is not one this server issued")
		}
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := c.QueryParam(name); v != "" {
			if *dst, err = time.Parse(time.RFC3339, v); err != nil {
				return apierror.BadRequest("%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z", name)
			}
		}
	}
	evs, err := r.store.ListAudit(c.Request().Context(), f)
	if err != nil {
		return apierror.Internal(err)
	}
	next := paging.Next(len(evs), p.Limit, func(i int) string { return strconv.FormatInt(evs[i].ID, 10) })
	if len(evs) > p.Limit {
		evs = evs[:p.Limit]
	}
	return c.JSON(http.StatusOK, Page{Events: evs, NextCursor: next})
}
