package app

import (
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/openapi"
	"github.com/latchhq/latch/server"
)

// Audit returns the audit recorder over this app's store.
func (a *App) Audit() *audit.Recorder { return audit.New(a.Store, a.Log) }

// mountManagement adds the host app's management API (SPEC §4) to srv:
// clients and authorizations, the audit log, and the public OpenAPI
// document describing all of /api.
func (a *App) mountManagement(srv *server.Server, rec *audit.Recorder) {
	a.Clients().Register(srv.API)
	rec.Register(srv.API)
	openapi.Register(srv.Echo())
}
