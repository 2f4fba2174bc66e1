// Package app assembles Latch from its configuration: it opens the
// database, loads the master key and signing keys, and builds the provider
// and HTTP server. Both `latch serve` and the management commands start
// here, so they always agree on how the pieces fit.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ory/fosite"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/latchhq/latch/approval"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/cimd"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/dpop"
	"github.com/latchhq/latch/endpoint"
	"github.com/latchhq/latch/keys"
	"github.com/latchhq/latch/logout"
	"github.com/latchhq/latch/migrations"
	"github.com/latchhq/latch/outbound"
	"github.com/latchhq/latch/provider"
	"github.com/latchhq/latch/ratelimit"
	"github.com/latchhq/latch/resources"
	"github.com/latchhq/latch/scopes"
	"github.com/latchhq/latch/secret"
	"github.com/latchhq/latch/server"
	"github.com/latchhq/latch/storage"
)

// App holds the assembled, long-lived pieces.
type App struct {
	Config *config.Config
	Store  *storage.Store
	Hasher *secret.Hasher
	Sealer *keys.Sealer
	Keys   *keys.Manager
	Scopes *scopes.Registry
	// DPoP verifies proofs; its nonces derive from the master key, so every
	// instance accepts every instance's nonce.
	DPoP *dpop.Verifier
	Log  *slog.Logger
	Now  func() time.Time
	// MasterKeyGenerated is true when this start wrote a new latch.key.
	MasterKeyGenerated bool
	// Outbound fetches every URL a client supplies (SPEC §7); one per
	// process, so its once-per-minute rule holds across requests.
	Outbound *outbound.Fetcher
	// Documents resolves clients identified by metadata documents.
	Documents *cimd.Resolver

	hmacKey []byte
	// replaySealer seals the token responses kept for the refresh reuse
	// interval, under a key derived from the data key.
	replaySealer *keys.Sealer
	// audit is the one recorder, so every writer shares its group commit.
	audit     *audit.Recorder
	auditOnce sync.Once
	// logout is the one sign-out service, so the background worker hears
	// when a logout through this instance queued deliveries.
	logout     *logout.Service
	logoutOnce sync.Once
}

// Options control how Open treats the schema.
type Options struct {
	// Migrate applies pending migrations. SQLite always migrates; on
	// PostgreSQL only when asked, under an advisory lock.
	Migrate bool
	Now     func() time.Time
}

// Open connects and prepares everything that does not listen on a port.
func Open(ctx context.Context, cfg *config.Config, log *slog.Logger, opt Options) (*App, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	store, err := storage.Open(cfg.Database.DSN, storage.Options{
		MaxOpenConns: cfg.Database.MaxOpenConns, MaxIdleConns: cfg.Database.MaxIdleConns,
		ConnMaxLifetime: cfg.Database.ConnMaxLifetime, ClientCacheTTL: cfg.Database.ClientCacheTTL, Now: opt.Now,
	})
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Store: store, Log: log, Now: opt.Now}
	if err := a.prepare(ctx, opt); err != nil {
		store.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) prepare(ctx context.Context, opt Options) error {
	cfg := a.Config
	if opt.Migrate || a.Store.Dialect() == migrations.SQLite {
		if _, err := a.Store.Migrate(ctx); err != nil {
			return err
		}
	} else if err := a.Store.CheckSchema(ctx); err != nil {
		if errors.Is(err, migrations.ErrBehind) {
			return fmt.Errorf("%w: run `latch migrate` or start with `latch serve --migrate`", err)
		}
		return err
	}
	master, generated, err := keys.LoadOrCreateMasterKey(ctx, cfg.MasterKey, cfg.ResolvedMasterKeyFile(), a.Store)
	if err != nil {
		return fmt.Errorf("master key: %w", err)
	}
	a.MasterKeyGenerated = generated
	if generated {
		a.Log.Warn("generated a master key; production must set LATCH_MASTER_KEY", "file", cfg.ResolvedMasterKeyFile())
	}
	a.Sealer = keys.NewSealer(master)
	// Keyed values hang off a data key sealed by the master key, so a
	// master-key rewrap leaves secrets and tokens valid.
	data, err := keys.LoadDataKey(ctx, a.Store, a.Sealer, master)
	if err != nil {
		return err
	}
	a.Hasher = secret.NewHasher(data.Derive("secret-hash"))
	a.Keys = keys.NewManager(a.Store, a.Sealer, a.Now, a.Log).WithAudit(a.Audit())
	// Every algorithm's key exists from the start (made under the rotation
	// lock), so no instance creates one lazily that the others do not know;
	// discovery and client validation offer exactly these.
	if err := a.Keys.Ensure(ctx, provider.IDTokenSigningAlgs...); err != nil {
		return err
	}
	a.hmacKey = data.Derive("token-hmac")
	var replayKey keys.MasterKey
	copy(replayKey[:], data.Derive("refresh-replay"))
	a.replaySealer = keys.NewSealer(replayKey)
	a.DPoP, err = dpop.New(dpop.Options{
		IATWindow: cfg.DPoP.IATWindow, NonceRequired: cfg.DPoP.NonceRequired,
		NonceSecret: data.Derive("dpop-nonce"), NonceWindow: cfg.DPoP.NonceLifetime,
		IsReplay: func(err error) bool { return errors.Is(err, storage.ErrReplay) }, Now: a.Now,
	}, a.Store)
	if err != nil {
		return err
	}
	list := make([]scopes.Scope, 0, len(cfg.Scopes))
	for _, s := range cfg.Scopes {
		list = append(list, scopes.Scope{Name: s.Name, Description: s.Description})
	}
	a.Scopes = scopes.New(list)
	a.Outbound = outbound.New(outbound.Options{AllowLoopback: cfg.Outbound.AllowLoopback, Now: a.Now, Log: a.Log})
	// https client ids resolve through their metadata documents wherever
	// a client is looked up (SPEC §6).
	a.Documents = cimd.New(cimd.Options{
		Enabled: cfg.CIMDEnabled(), AllowLoopback: cfg.Outbound.AllowLoopback,
		Allowed: config.HostList(cfg.CIMD.AllowedHosts), Denied: config.HostList(cfg.CIMD.DeniedHosts),
		MinCache: cfg.CIMD.MinCache, MaxCache: cfg.CIMD.MaxCache, NegativeCache: cfg.CIMD.NegativeCache,
		Now: a.Now, Log: a.Log,
	}, a.Outbound, a.Clients())
	a.Store.UseExternalClients(a.Documents)
	return nil
}

// Provider builds the fosite provider.
func (a *App) Provider() *fosite.Fosite {
	cfg := a.Config
	return provider.New(provider.Options{
		Issuer:               cfg.Issuer,
		AccessTokenLifetime:  cfg.Tokens.AccessTokenLifetime,
		RefreshTokenLifetime: cfg.Tokens.RefreshTokenLifetime,
		IDTokenLifetime:      cfg.Tokens.IDTokenLifetime,
		CodeLifetime:         cfg.Tokens.CodeLifetime,
		PARLifetime:          cfg.PAR.Lifetime,
		OpaqueAccessTokens:   cfg.Tokens.AccessTokenFormat == config.AccessTokenOpaque,
		HMACSecret:           a.hmacKey,
		Hasher:               a.Hasher,
		Fetcher:              a.Outbound,
		Now:                  a.Now,
		Log:                  a.Log,
	}, a.Store, a.Keys.Signer(keys.ES256))
}

// Server builds the HTTP server with its metrics registry.
func (a *App) Server() *server.Server {
	cfg := a.Config
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "latch_signing_keys_unopened",
		Help: "Published signing keys this instance cannot open with its master key (they verify but never sign here).",
	}, func() float64 { return float64(a.Keys.Unopened()) }))
	rec := a.Audit()
	res := a.Resources()
	appr := approval.New(a.Store, a.Scopes, res, cfg.Issuer, a.Now, rec)
	sessions := a.Logout()
	failures := ratelimit.NewFailures(a.Store, ratelimit.FailureOptions{
		PerIP: cfg.Limits.FailedCredentialsPerIP, PerClient: cfg.Limits.FailedCredentialsPerClient,
		Window: cfg.Limits.FailureWindow, Sync: cfg.Limits.FailureSync, Now: a.Now, Log: a.Log,
	})
	return server.New(server.Options{
		Issuer:               cfg.Issuer,
		ApprovalURL:          cfg.Approval.URL,
		AuthSessionLifetime:  cfg.Approval.SessionLifetime,
		LoginSessionLifetime: cfg.Login.SessionLifetime,
		MaxBodyBytes:         cfg.HTTP.MaxBodyBytes,
		IDTokenSigningAlg:    cfg.Tokens.IDTokenSigningAlg,
		RefreshReuseInterval: cfg.Tokens.RefreshReuseInterval,
		PARRequired:          cfg.PAR.Required,
		ReadTimeout:          cfg.HTTP.ReadTimeout,
		ReadHeaderTimeout:    cfg.HTTP.ReadHeaderTimeout,
		WriteTimeout:         cfg.HTTP.WriteTimeout,
		IdleTimeout:          cfg.HTTP.IdleTimeout,
		Limits: server.Limits{
			AuthorizePerMinute: cfg.Limits.AuthorizePerMinute, PARPerMinute: cfg.Limits.PARPerMinute,
			RegistrationPerMinute: cfg.Limits.RegistrationPerMinute, TrackedIPs: cfg.Limits.TrackedIPs,
		},
		SeparateAdmin:           cfg.HTTP.AdminAddr != "",
		ClientMetadataDocuments: cfg.CIMDEnabled(),
		RegistrationEndpoint:    registrationEndpoint(cfg),
	}, server.Deps{
		Store: a.Store, OAuth: a.Provider(), Keys: a.Keys, Hasher: a.Hasher, Scopes: a.Scopes,
		Approval: appr, Logger: a.Log, Metrics: reg, Now: a.Now, Audit: rec, DPoP: a.DPoP, Resources: res,
		Sessions:      sessions,
		APIKeys:       a.APIKeys(),
		RefreshReplay: a.replaySealer,
		Failures:      failures,
		Clients:       a.Clients(),
		Registration:  a.registrationRoutes(failures),
	})
}

func registrationEndpoint(cfg *config.Config) string {
	if cfg.Registration == config.RegistrationOff {
		return ""
	}
	return cfg.Issuer + endpoint.Register
}

// Resources is the registry of resource servers (RFC 8707) from config.
func (a *App) Resources() *resources.Registry {
	list := make([]resources.Resource, 0, len(a.Config.Resources))
	for _, r := range a.Config.Resources {
		list = append(list, resources.Resource{URI: r.URI, Name: r.Name, Scopes: r.Scopes})
	}
	return resources.New(list, a.Config.DefaultResource)
}

// Close releases the database.
func (a *App) Close() error { return a.Store.Close() }
