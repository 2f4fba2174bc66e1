package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchhq/latch/app"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/keys"
)

func newKeys(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "List, rotate and rewrap token-signing keys", Args: cobra.NoArgs}
	cmd.AddCommand(newKeysList(e), newKeysRotate(e), newRewrap(e))
	return cmd
}

func newKeysList(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List signing keys that are not retired, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withApp(cmd, func(_ context.Context, a *app.App) error {
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "KID\tALG\tCURRENT\tACTIVATES_AT\tRETIRES_AT")
				for _, k := range a.Keys.List() {
					retires := "-"
					if k.RetiresAt != nil {
						retires = k.RetiresAt.UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(w, "%s\t%s\t%t\t%s\t%s\n", k.KID, k.Alg, k.Current, k.ActivatesAt.UTC().Format(time.RFC3339), retires)
				}
				return w.Flush()
			})
		},
	}
}

func newKeysRotate(e *env) *cobra.Command {
	var (
		alg                     string
		prePublish, retireAfter time.Duration
	)
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Add a new signing key and schedule the old ones of that algorithm for retirement",
		Long: `Adds a key that is published in the JWKS at once and signs from now + --pre-publish.
Older keys of the algorithm keep verifying for --retire-after after that, so
tokens they signed stay valid until they expire; choose at least the longest
access/ID token lifetime. Running servers pick the new key up within 30s.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if alg != keys.ES256 && alg != keys.RS256 {
				return fmt.Errorf("--alg must be %s or %s", keys.ES256, keys.RS256)
			}
			if prePublish < 0 || retireAfter < 0 {
				return fmt.Errorf("--pre-publish and --retire-after must not be negative")
			}
			return e.withApp(cmd, func(ctx context.Context, a *app.App) error {
				kid, err := a.Keys.Rotate(ctx, alg, prePublish, retireAfter)
				if err != nil {
					return err
				}
				a.Audit().Record(ctx, audit.Event{Name: audit.KeyRotated, Details: map[string]any{
					"kid": kid, "alg": alg, "pre_publish": prePublish.String(), "retire_after": retireAfter.String()}})
				fmt.Fprintf(e.stdout, "new %s key %s signs from %s\n", alg, kid, a.Now().Add(prePublish).UTC().Format(time.RFC3339))
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&alg, "alg", keys.ES256, "algorithm: ES256 or RS256")
	f.DurationVar(&prePublish, "pre-publish", 0, "publish the new key this long before it starts signing (lets caches refresh)")
	f.DurationVar(&retireAfter, "retire-after", 24*time.Hour, "keep old keys verifying this long after the new key takes over")
	return cmd
}
