package app

import (
	"context"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/openapi"
	"github.com/latchhq/latch/secret"
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
	rec.Register(srv.API)
	openapi.Register(srv.AdminEcho())
}

// NewAPIKey makes a new admin key, stores only its hash, and returns the
// row and the key in plaintext, once.
func (a *App) NewAPIKey(ctx context.Context, name string) (*storage.APIKey, string, error) {
	k, plain, err := a.storeAPIKey(ctx, secret.ID(9), name, "latch_"+secret.New())
	if err != nil {
		return nil, "", err
	}
	a.Audit().Record(ctx, apiKeyCreated(k, "cli"))
	return k, plain, nil
}
