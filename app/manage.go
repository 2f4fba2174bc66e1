package app

import (
	"context"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/apikeys"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/openapi"
	"github.com/latchhq/latch/server"
	"github.com/latchhq/latch/storage"
)

// Audit returns the audit recorder over this app's store.
func (a *App) Audit() *audit.Recorder {
	a.auditOnce.Do(func() {
		a.audit = audit.New(a.Store, a.Log).WithExportSettle(a.Config.Audit.ExportSettle, a.Now)
	})
	return a.audit
}

// mountManagement adds the host app's management API (SPEC §4) to srv:
// clients and authorizations, the audit log, and the public OpenAPI
// document describing all of /api.
func (a *App) mountManagement(srv *server.Server, rec *audit.Recorder) {
	a.Clients().Register(srv.API)
	var limits clients.CredentialLimits
	if f := srv.CredentialFailures(); f != nil {
		limits = f
	}
	a.Registration(limits, srv.RegistrationLimit()).Mount(srv.Echo(), srv.API)
	rec.Register(srv.API)
	openapi.Register(srv.AdminEcho())
}

// Registration is dynamic client registration and its initial access
// tokens; limits and perIP may be nil (the CLI needs neither).
func (a *App) Registration(limits clients.CredentialLimits, perIP echo.MiddlewareFunc) *clients.Registration {
	return clients.NewRegistration(a.Clients(), a.Store, a.Hasher, limits, a.Config.Registration, a.Config.Issuer, a.Now, perIP)
}

// APIKeys returns the admin API key service (every key event is audited
// there, whoever acts: the server, the first start or the CLI).
func (a *App) APIKeys() *apikeys.Service { return apikeys.New(a.Store, a.Hasher, a.Audit()) }

// NewAPIKey makes a new admin key, stores only its hash, and returns the
// row and the key in plaintext, once.
func (a *App) NewAPIKey(ctx context.Context, name string) (*storage.APIKey, string, error) {
	return a.APIKeys().Create(ctx, name, apikeys.SourceCLI)
}
