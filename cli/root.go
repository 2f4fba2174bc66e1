// Package cli is the latch command line: serve (the default), migrate,
// version, and the management commands that work on the configured
// database without a running server.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchhq/latch/app"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/migrations"
)

// Version and Commit are set at build time by scripts/release.sh with
// -ldflags "-X github.com/latchhq/latch/cli.Version=v1.2.3 -X ...cli.Commit=<sha>".
var (
	Version = ""
	Commit  = ""
)

// env is the process environment, read once in Execute.
type env struct {
	environ []string
	stdout  io.Writer
	stderr  io.Writer
}

// Execute runs the command line and returns the process exit code.
func Execute(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) int {
	e := &env{environ: environ, stdout: stdout, stderr: stderr}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "latch: "+oneLine(err))
		return 1
	}
	return 0
}

// oneLine keeps CLI errors to one readable line per problem.
func oneLine(err error) string {
	var ve *config.ValidationError
	if errors.As(err, &ve) {
		return "invalid configuration:\n  " + strings.ReplaceAll(strings.TrimSpace(ve.Error()), "\n", "\n  ")
	}
	return err.Error()
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "latch",
		Short:         "OAuth 2.1 authorization server and OpenID Connect provider",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
	}
	config.BindFlags(root.PersistentFlags())
	serve := newServe(e)
	// `latch` with no subcommand serves, so `go run .` is all a newcomer types.
	root.Flags().AddFlagSet(serve.LocalFlags())
	root.RunE = serve.RunE
	root.AddCommand(serve, newMigrate(e), newVersion(e))
	for _, add := range extraCommands {
		root.AddCommand(add(e))
	}
	return root
}

// extraCommands lets sibling files add command groups without editing
// newRoot.
var extraCommands = []func(*env) *cobra.Command{newClients, newKeys, newAPIKey, newJanitor, newBackup, newRegistrationTokens}

func (e *env) loadConfig(cmd *cobra.Command) (*config.Config, error) {
	return config.Load(config.LoadOptions{Environ: e.environ, Flags: cmd.Flags()})
}

func (e *env) logger(cfg *config.Config) *slog.Logger {
	level := new(slog.LevelVar)
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

// openApp loads config and assembles the app for a management command.
func (e *env) openApp(cmd *cobra.Command, migrate bool) (*app.App, error) {
	cfg, err := e.loadConfig(cmd)
	if err != nil {
		return nil, err
	}
	return app.Open(cmd.Context(), cfg, e.logger(cfg), app.Options{Migrate: migrate})
}

func newMigrate(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations (under an advisory lock on PostgreSQL)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetContext(e.migrationProgress(cmd.Context()))
			a, err := e.openApp(cmd, true)
			if err != nil {
				return err
			}
			defer a.Close()
			v, err := a.Store.Migrate(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "database schema at version %d\n", v)
			return nil
		},
	}
}

// lockReportEvery is how often a migration waiting for another
// instance's lock says it is still waiting.
const lockReportEvery = 5 * time.Second

// migrationProgress makes migrations run under ctx print a line when they
// must wait for another instance's migration lock, and every few seconds
// while they wait, instead of hanging silently for up to five minutes.
func (e *env) migrationProgress(ctx context.Context) context.Context {
	return migrations.WithLockWait(ctx, lockReportEvery, func(waited time.Duration) {
		if waited == 0 {
			fmt.Fprintln(e.stderr, "latch: waiting for the migration lock: another `latch migrate` or `latch serve --migrate` is migrating this database; this continues once it finishes")
			return
		}
		fmt.Fprintf(e.stderr, "latch: still waiting for the migration lock after %s (giving up after 5m)\n", waited.Round(time.Second))
	})
}

func newVersion(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintf(e.stdout, "latch %s (commit %s, %s)\n", version(), commit(), runtime.Version())
			return nil
		},
	}
}

// commit is the embedded commit, else the one the go tool stamped.
func commit() string {
	if Commit != "" {
		return Commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
