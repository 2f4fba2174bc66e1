package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchhq/latch/app"
	"github.com/latchhq/latch/keys"
	"github.com/latchhq/latch/provider"
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
				t := newTable(e.stdout, "KID", "ALG", "CURRENT", "ACTIVATES_AT", "RETIRES_AT")
				for _, k := range a.Keys.List() {
					t.row(k.KID, k.Alg, k.Current, stamp(k.ActivatesAt), maybeStamp(k.RetiresAt))
				}
				return t.flush()
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
		Long: `Adds a key that is published in the JWKS at once and signs from now + --pre-publish
(default keys.pre_publication, 1h): every instance and every relying party's
JWKS cache knows it before any token carries its kid. Older keys of the
algorithm keep verifying for --retire-after after that (default
keys.retire_after), which may not be shorter than the longest access/ID token
lifetime, so every token they signed stays valid until it expires. Running
instances pick the new key up within keys.reload_interval, or at once when
they meet a token signed with it. After a key compromise, --pre-publish 0
makes the new key sign at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(provider.IDTokenSigningAlgs, alg) {
				return fmt.Errorf("--alg must be one of %s", strings.Join(provider.IDTokenSigningAlgs, ", "))
			}
			if prePublish < 0 || retireAfter < 0 {
				return fmt.Errorf("--pre-publish and --retire-after must not be negative")
			}
			return e.withApp(cmd, func(ctx context.Context, a *app.App) error {
				k := a.Config.Keys
				if !cmd.Flags().Changed("pre-publish") {
					prePublish = k.PrePublication
				}
				if !cmd.Flags().Changed("retire-after") {
					retireAfter = k.RetireAfter
				}
				// A key retired before the tokens it signed expire would
				// make them unverifiable everywhere.
				if longest := max(a.Config.Tokens.AccessTokenLifetime, a.Config.Tokens.IDTokenLifetime); retireAfter < longest {
					return fmt.Errorf("--retire-after %s is shorter than the longest token lifetime (%s): tokens signed by the old key would stop verifying before they expire", retireAfter, longest)
				}
				// The manager records key.rotated itself, in the rotation's
				// transaction.
				kid, err := a.Keys.Rotate(ctx, alg, prePublish, retireAfter)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "new %s key %s signs from %s (published now)\n", alg, kid, a.Now().Add(prePublish).UTC().Format(time.RFC3339))
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&alg, "alg", keys.ES256, "algorithm: one of "+strings.Join(provider.IDTokenSigningAlgs, ", "))
	f.DurationVar(&prePublish, "pre-publish", 0, "publish the new key this long before it starts signing (default keys.pre_publication)")
	f.DurationVar(&retireAfter, "retire-after", 0, "keep old keys verifying this long after the new key takes over (default keys.retire_after; at least the longest token lifetime)")
	return cmd
}
