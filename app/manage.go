package app

import (
	"context"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/apikeys"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/ratelimit"
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

// registrationRoutes builds dynamic registration for the server, which
// mounts it with its own per-address limit; failures (nil when off) is the
// failed-credential limit the server uses too, so a guessed initial access
// token counts like any other guessed credential.
func (a *App) registrationRoutes(failures *ratelimit.Failures) func(echo.MiddlewareFunc) server.RegistrationRoutes {
	var limits clients.CredentialLimits
	if failures != nil {
		limits = failures
	}
	return func(perIP echo.MiddlewareFunc) server.RegistrationRoutes {
		return a.Registration(limits, perIP)
	}
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
