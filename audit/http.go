package audit

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/apierror"
	"github.com/latchhq/latch/endpoint"
	"github.com/latchhq/latch/paging"
	"github.com/latchhq/latch/storage"
)

// Register mounts GET /audit on g (which must require an admin API key).
func (r *Recorder) Register(g *echo.Group) {
	g.GET(endpoint.Audit, r.handleList)
}

// Page is GET /api/audit's answer.
type Page struct {
	Events     []storage.AuditEvent `json:"events"`
	NextCursor string               `json:"next_cursor"`
}

// exportPrefix marks export cursors so that one is never taken for a
// newest-first cursor, or the other way round.
const exportPrefix = "after:"

func (r *Recorder) handleList(c echo.Context) error {
	p, err := paging.Parse(c)
	if err != nil {
		return err
	}
	export := c.QueryParams().Has("after")
	if export && p.Cursor != "" {
		return apierror.BadRequest("use either after (export, oldest first) or cursor (newest first), not both")
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
	if export {
		if f.After, err = parseExportCursor(c.QueryParam("after")); err != nil {
			return err
		}
		f.Ascending, f.SettledBefore = true, r.now().Add(-r.settle)
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
	if export {
		return c.JSON(http.StatusOK, exportPage(evs, p.Limit, f.After))
	}
	next := paging.Next(len(evs), p.Limit, func(i int) string { return strconv.FormatInt(evs[i].ID, 10) })
	if len(evs) > p.Limit {
		evs = evs[:p.Limit]
	}
	return c.JSON(http.StatusOK, Page{Events: evs, NextCursor: next})
}

// parseExportCursor reads ?after=: empty starts at the oldest event.
func parseExportCursor(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	id, ok := strings.CutPrefix(string(b), exportPrefix)
	n, perr := strconv.ParseInt(id, 10, 64)
	if err != nil || !ok || perr != nil || n < 0 {
		return 0, apierror.BadRequest("after is not a next_cursor this server issued by an export (after=) page")
	}
	return n, nil
}

// exportPage keeps at most limit events (fetched limit+1, oldest first).
// Its next_cursor is never empty: the log goes on, and an exporter polls
// with it until a page comes back shorter than limit, then waits.
func exportPage(evs []storage.AuditEvent, limit int, after int64) Page {
	evs = evs[:min(len(evs), limit)]
	if len(evs) > 0 {
		after = evs[len(evs)-1].ID
	}
	next := base64.RawURLEncoding.EncodeToString([]byte(exportPrefix + strconv.FormatInt(after, 10)))
	return Page{Events: evs, NextCursor: next}
}
