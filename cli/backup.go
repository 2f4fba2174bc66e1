package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/latchhq/latch/storage"
)

func newBackup(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "backup PATH",
		Short: "Write a consistent copy of the SQLite database to PATH, safe while latch serves",
		Long: "Copies the configured SQLite database to PATH (a new file) with VACUUM INTO: one\n" +
			"consistent, compacted snapshot, taken while `latch serve` keeps running. The copy\n" +
			"is checked before the command succeeds. The master key (latch.key or\n" +
			"LATCH_MASTER_KEY) is not part of it: back it up separately. PostgreSQL is backed\n" +
			"up with its own tools (pg_dump, archiving); see docs/deploy.md.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, err := e.loadConfig(cmd)
			if err != nil {
				return err
			}
			src, dst := cfg.SQLitePath(), args[0]
			if src == "" {
				return errors.New("latch backup copies SQLite databases; back up PostgreSQL with pg_dump or continuous archiving (see docs/deploy.md)")
			}
			if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("there is no database at %s to back up; check LATCH_DATABASE_DSN", src)
			}
			// Created here, empty and private (the copy holds sealed keys and
			// hashes), and O_EXCL so an existing file is never overwritten.
			f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s already exists; latch backup never overwrites a file: choose a new name", dst)
			}
			if err != nil {
				return fmt.Errorf("cannot create %s: %w; check that its directory exists and is writable", dst, err)
			}
			f.Close()
			if err := backup(ctx, src, dst); err != nil {
				os.Remove(dst) // a partial copy must not pass for a backup
				return err
			}
			st, err := os.Stat(dst)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "backed up %s to %s (%d bytes); the master key is not in it: keep latch.key or LATCH_MASTER_KEY backed up separately\n", src, dst, st.Size())
			return nil
		},
	}
}

// backup copies src to dst and proves the copy opens and is sound.
func backup(ctx context.Context, src, dst string) error {
	s, err := storage.Open("sqlite://"+src, storage.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.BackupSQLite(ctx, dst); err != nil {
		return err
	}
	c, err := storage.Open("sqlite://"+dst, storage.Options{})
	if err != nil {
		return fmt.Errorf("the copy does not open: %w", err)
	}
	defer c.Close()
	if err := c.IntegrityCheck(ctx); err != nil {
		return fmt.Errorf("the copy is damaged: %w", err)
	}
	return nil
}
