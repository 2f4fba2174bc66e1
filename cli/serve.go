package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchhq/latch/app"
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

func (e *env) serve(cmd *cobra.Command, migrate bool) error {
	ctx := cmd.Context()
	cfg, err := e.loadConfig(cmd)
	if err != nil {
		return err
	}
	log := e.logger(cfg)
	a, err := app.Open(ctx, cfg, log, app.Options{Migrate: migrate})
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Bootstrap(ctx, e.stdout); err != nil {
		return err
	}
	srv := a.Server()
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
	}
	hs := srv.HTTPServer(cfg.HTTP.Addr)
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	a.RunBackground(bg)
	go a.RunKeyRotation(bg)

	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	if cfg.Pprof.Enabled {
		pln, err := net.Listen("tcp", cfg.Pprof.Addr)
		if err != nil {
			return fmt.Errorf("pprof: listen on %s: %w", cfg.Pprof.Addr, err)
		}
		ps := server.PprofServer(cfg.Pprof.Addr)
		defer ps.Close()
		go func() { errc <- ps.Serve(pln) }()
		log.Warn("pprof profiler enabled", "addr", pln.Addr().String())
	}
	mode := "approval via " + cfg.Approval.URL
	if cfg.Approval.URL == "" {
		mode = "built-in development consent page at " + cfg.Issuer + "/dev/consent"
	}
	log.Info("latch is ready", "issuer", cfg.Issuer, "addr", ln.Addr().String(), "database", string(a.Store.Dialect()), "approval", mode)
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return hs.Shutdown(shutdownCtx)
}
