// Package paging reads and writes the cursor pagination every list of the
// management API shares: ?limit=&cursor= in, next_cursor out. Cursors are
// opaque to callers so their encoding can change without breaking them.
package paging

import (
	"encoding/base64"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/apierror"
)

// Default and Max bound ?limit=.
const (
	Default = 50
	Max     = 200
)

// Params are a request's limit and decoded cursor ("" on the first page).
type Params struct {
	Limit  int
	Cursor string
}

// Parse reads ?limit= and ?cursor=; a bad value is a 400.
func Parse(c echo.Context) (Params, error) {
	p := Params{Limit: Default}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > Max {
			return p, apierror.BadRequest("limit must be an integer from 1 to %d", Max)
		}
		p.Limit = n
	}
	if v := c.QueryParam("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(b) == 0 {
			return p, apierror.BadRequest("cursor is not one this server issued")
		}
		p.Cursor = string(b)
	}
	return p, nil
}

// Next is the next_cursor for a page fetched with limit+1 rows: the cursor
// of the last row kept, or "" when n rows mean there is no further page.
func Next(n, limit int, last func(i int) string) string {
	if n <= limit {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(last(limit - 1)))
}
