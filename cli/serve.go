package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/latchhq/latch/app"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/server"
)

func newServe(e *env) *cobra.Command {
	var migrate bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the authorization server (the default command)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.serve(cmd, migrate)
		},
	}
	cmd.Flags().BoolVar(&migrate, "migrate", false, "apply pending PostgreSQL migrations before serving (SQLite always migrates)")
	return cmd
}

// listener is one bound address and the server that will answer on it.
type listener struct {
	name string
	ln   net.Listener
	hs   *http.Server
}

func (e *env) serve(cmd *cobra.Command, migrate bool) error {
	ctx := cmd.Context()
	cfg, err := e.loadConfig(cmd)
	if err != nil {
		return err
	}
	log := e.logger(cfg)
	a, err := app.Open(e.migrationProgress(ctx), cfg, log, app.Options{Migrate: migrate})
	if err != nil {
		return err
	}
	defer a.Close()
	srv := a.Server()

	// Bind every port before Bootstrap: it stores the one-time admin key and
	// demo secret and prints them, and a start that then failed on a taken
	// port would have stored secrets nobody saw. Bound first, a failed start
	// stores nothing and the next successful one shows them.
	ls, err := bind(cfg, srv)
	if err != nil {
		return err
	}
	defer func() {
		for _, l := range ls {
			l.ln.Close() // no-op once Serve owns it and shut it down
		}
	}()
	if err := a.Bootstrap(ctx, e.stdout); err != nil {
		return err
	}

	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	waitBackground := a.RunBackground(bg)
	var rotation sync.WaitGroup
	rotation.Go(func() { a.RunKeyRotation(bg) })

	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() {
			if err := l.hs.Serve(l.ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s listener: %w", l.name, err)
			}
		}()
	}
	e.logReady(log, cfg, a, ls)

	var serveErr error
	select {
	case serveErr = <-errc:
		log.Error("a listener failed; shutting down", "err", serveErr)
	case <-ctx.Done():
		log.Info("shutting down: finishing requests in flight", "timeout", cfg.HTTP.ShutdownTimeout.String())
	}
	shutdown(log, cfg, ls)
	// Requests are done; now the jobs, and only then (deferred) the database.
	stopBackground()
	waitBackground()
	rotation.Wait()
	log.Info("stopped")
	return serveErr
}

// bind listens on the public address and, when configured, the admin and
// profiler addresses; on any failure it releases what it bound.
func bind(cfg *config.Config, srv *server.Server) ([]listener, error) {
	type want struct {
		name, addr string
		hs         *http.Server
	}
	wants := []want{{"public", cfg.HTTP.Addr, srv.HTTPServer(cfg.HTTP.Addr)}}
	if hs := srv.AdminHTTPServer(cfg.HTTP.AdminAddr); hs != nil {
		wants = append(wants, want{"admin", cfg.HTTP.AdminAddr, hs})
	}
	if cfg.Pprof.Enabled {
		wants = append(wants, want{"pprof", cfg.Pprof.Addr, server.PprofServer(cfg.Pprof.Addr)})
	}
	var ls []listener
	for _, w := range wants {
		ln, err := net.Listen("tcp", w.addr)
		if err != nil {
			for _, l := range ls {
				l.ln.Close()
			}
			return nil, listenError(w.name, w.addr, err)
		}
		ls = append(ls, listener{name: w.name, ln: ln, hs: w.hs})
	}
	return ls, nil
}

// listenError says which listener could not bind and what to change.
func listenError(name, addr string, err error) error {
	setting := map[string]string{"public": "LATCH_HTTP_ADDR", "admin": "LATCH_ADMIN_ADDR", "pprof": "LATCH_PPROF_ADDR"}[name]
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("cannot listen on %s (%s): the address is already in use by another process; stop it or set %s to a free address", addr, name, setting)
	}
	return fmt.Errorf("cannot listen on %s (%s): %w; set %s to an address this machine has", addr, name, err, setting)
}

// shutdown stops accepting on every listener at once and waits for the
// requests in flight, up to http.shutdown_timeout; connections still busy
// then are closed.
func shutdown(log *slog.Logger, cfg *config.Config, ls []listener) {
	sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() {
			if err := l.hs.Shutdown(sctx); err != nil {
				log.Warn("requests still in flight at the shutdown timeout were cut off", "listener", l.name, "timeout", cfg.HTTP.ShutdownTimeout.String())
				l.hs.Close()
			}
		})
	}
	wg.Wait()
}

func (e *env) logReady(log *slog.Logger, cfg *config.Config, a *app.App, ls []listener) {
	mode := "approval via " + cfg.Approval.URL
	if cfg.Approval.URL == "" {
		mode = "built-in development consent page at " + cfg.Issuer + "/dev/consent"
	}
	args := []any{"issuer", cfg.Issuer, "addr", ls[0].ln.Addr().String(), "database", string(a.Store.Dialect()), "approval", mode}
	for _, l := range ls[1:] {
		args = append(args, l.name+"_addr", l.ln.Addr().String())
		if l.name == "pprof" {
			log.Warn("pprof profiler enabled", "addr", l.ln.Addr().String())
		}
	}
	log.Info("latch is ready", args...)
}
