// Package openapi serves the OpenAPI 3 description of Latch's management
// API (/api). The document is hand-written and embedded; a test holds it
// and the router to the same set of paths and methods.
package openapi

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/endpoint"
)

//go:embed openapi.json
var document []byte

// Document returns the embedded OpenAPI document.
func Document() []byte { return document }

// Register serves the document on e at endpoint.OpenAPI, without an API
// key: it describes the API and reveals nothing about any deployment.
func Register(e *echo.Echo) {
	e.GET(endpoint.OpenAPI, func(c echo.Context) error {
		return c.Blob(http.StatusOK, "application/json", document)
	})
}
