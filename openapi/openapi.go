// Package openapi serves the OpenAPI 3 description of Latch's management
// API (/api). The document is hand-written and embedded; a test holds it
// and the router to the same set of paths and methods.
package openapi

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Path is where the document is served, without an API key: it describes
// the API and reveals nothing about any deployment.
const Path = "/api/openapi.json"

//go:embed openapi.json
var document []byte

// Document returns the embedded OpenAPI document.
func Document() []byte { return document }

// Register serves the document on e.
func Register(e *echo.Echo) {
	e.GET(Path, func(c echo.Context) error {
		return c.Blob(http.StatusOK, "application/json", document)
	})
}
