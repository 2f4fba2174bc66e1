package server

import (
	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/endpoint"
	"github.com/latchhq/latch/openapi"
)

// APIRoutes is one package's part of the management API: Register mounts
// it on api, a group that already requires an admin API key and keeps
// answers out of caches.
type APIRoutes interface {
	Register(api *echo.Group)
}

// RegistrationRoutes is dynamic client registration: its public endpoint
// on public, and its initial access tokens on api.
type RegistrationRoutes interface {
	Mount(public *echo.Echo, api *echo.Group)
}

// mountAPI mounts all of /api, and nothing else mounts any of it, so this
// list is the management API (the OpenAPI drift test holds the document to
// it). Everything goes on admin, the public router unless SeparateAdmin.
func (s *Server) mountAPI(public, admin *echo.Echo, d Deps) {
	// The scope list and the API's own description need no key: they
	// describe the server, never its users.
	admin.GET(endpoint.Scopes, s.listScopes)
	openapi.Register(admin)
	api := admin.Group(endpoint.API, noStore, s.requireAPIKey)
	s.appr.Register(api)
	if d.Clients != nil {
		d.Clients.Register(api)
	}
	if d.Registration != nil {
		d.Registration(s.RegistrationLimit()).Mount(public, api)
	}
	if d.Audit != nil {
		d.Audit.Register(api)
	}
	if d.Sessions != nil {
		d.Sessions.Register(api)
	}
}
