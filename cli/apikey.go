package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/latchhq/latch/app"
)

func newAPIKey(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "apikey", Short: "Create, list and revoke admin API keys (X-API-Key)", Args: cobra.NoArgs}
	cmd.AddCommand(newAPIKeyCreate(e), newAPIKeyList(e), newAPIKeyRevoke(e))
	return cmd
}

func newAPIKeyCreate(e *env) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "create --name NAME",
		Short: "Create an API key; it is printed once and stored only hashed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return fmt.Errorf("--name is required (say who or what will use the key)")
			}
			return e.withApp(cmd, func(ctx context.Context, a *app.App) error {
				k, plain, err := a.NewAPIKey(ctx, name)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "id:   %s\nname: %s\nkey:  %s\n(the key is shown only now; store it safely)\n", k.ID, k.Name, plain)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "what the key is for")
	return cmd
}

func newAPIKeyList(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List API keys (never the keys themselves)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withApp(cmd, func(ctx context.Context, a *app.App) error {
				ks, err := a.Store.ListAPIKeys(ctx)
				if err != nil {
					return err
				}
				t := newTable(e.stdout, "ID", "NAME", "CREATED_AT", "REVOKED_AT")
				for _, k := range ks {
					t.row(k.ID, k.Name, stamp(k.CreatedAt), maybeStamp(k.RevokedAt))
				}
				return t.flush()
			})
		},
	}
}

func newAPIKeyRevoke(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key; it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withApp(cmd, func(ctx context.Context, a *app.App) error {
				if err := a.APIKeys().Revoke(ctx, args[0]); err != nil {
					return notFound(err, "active API key", args[0])
				}
				fmt.Fprintf(e.stdout, "revoked API key %s\n", args[0])
				return nil
			})
		},
	}
}
