package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/keys"
	"github.com/latchhq/latch/keys/masterkey"
)

// envNewMasterKey carries the new master key for `latch keys rewrap`, so it
// need not appear in the process list.
const envNewMasterKey = config.EnvNewMasterKey

func newRewrap(e *env) *cobra.Command {
	var newKey string
	cmd := &cobra.Command{
		Use:   "rewrap",
		Short: "Re-encrypt every signing key under a new master key (one transaction)",
		Long: "Re-encrypts all private signing keys, retired ones included, from the current\n" +
			"master key to the one given with --new-master-key or " + envNewMasterKey + ".\n" +
			"Instances may keep running: then restart them one by one with LATCH_MASTER_KEY\n" +
			"set to the new key. Until restarted, an instance keeps signing with the keys it\n" +
			"holds, verifies keys made since, and refuses to make or rotate keys (it logs\n" +
			"why), so no key is ever sealed under the old master key after the rewrap.\n" +
			"The data key (behind client-secret and API-key hashes, code and refresh-token\n" +
			"HMACs and DPoP nonces) is re-sealed too, so nothing issued before becomes invalid.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if newKey == "" {
				newKey = e.getenv(envNewMasterKey)
			}
			if newKey == "" {
				return errors.New("give the new master key with --new-master-key or " + envNewMasterKey)
			}
			next, err := masterkey.Decode(newKey)
			if err != nil {
				return fmt.Errorf("new master key: %w", err)
			}
			a, err := e.openApp(cmd, false)
			if err != nil {
				return err
			}
			defer a.Close()
			ctx := audit.WithActor(cmd.Context(), audit.ActorCLI, e.osUser())
			n, err := a.Keys.Rewrap(ctx, keys.NewSealer(next))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "rewrapped %d keys; restart every instance, one at a time, with the new LATCH_MASTER_KEY\n", n)
			return nil
		},
	}
	cmd.Flags().StringVar(&newKey, "new-master-key", "", "base64 of the new 32-byte master key (prefer "+envNewMasterKey+")")
	return cmd
}

func (e *env) getenv(name string) string {
	for _, kv := range e.environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}
