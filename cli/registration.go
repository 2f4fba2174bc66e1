package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchhq/latch/app"
	"github.com/latchhq/latch/clients"
)

func newRegistrationTokens(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "registration-tokens", Short: "Create, list and revoke initial access tokens for dynamic registration (registration: token)", Args: cobra.NoArgs}
	cmd.AddCommand(newRegTokenCreate(e), newRegTokenList(e), newRegTokenRevoke(e))
	return cmd
}

func newRegTokenCreate(e *env) *cobra.Command {
	var expiresIn time.Duration
	var maxUses int
	cmd := &cobra.Command{
		Use:   "create [--expires-in 24h] [--max-uses N]",
		Short: "Create an initial access token; it is printed once and stored only hashed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withApp(cmd, func(ctx context.Context, a *app.App) error {
				v, err := a.Registration(nil, nil).CreateToken(ctx, clients.TokenRequest{ExpiresIn: int64(expiresIn / time.Second), MaxUses: maxUses})
				if err != nil {
					return err
				}
				exp := "never"
				if v.ExpiresAt != nil {
					exp = v.ExpiresAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(e.stdout, "id:       %s\nexpires:  %s\nmax uses: %d (0: unlimited)\ntoken:    %s\n(the token is shown only now; registrants send it as Authorization: Bearer)\n", v.ID, exp, v.MaxUses, v.Token)
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&expiresIn, "expires-in", 0, "lifetime (0: never expires)")
	cmd.Flags().IntVar(&maxUses, "max-uses", 0, "registrations it may authorise (0: unlimited)")
	return cmd
}

func newRegTokenList(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List initial access tokens (never the tokens themselves)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withApp(cmd, func(ctx context.Context, a *app.App) error {
				list, err := a.Store.ListRegistrationTokens(ctx)
				if err != nil {
					return err
				}
				tbl := newTable(e.stdout, "ID", "USES", "MAX_USES", "EXPIRES_AT", "CREATED_AT")
				for _, t := range list {
					tbl.row(t.ID, t.Uses, t.MaxUses, maybeStamp(t.ExpiresAt), stamp(t.CreatedAt))
				}
				return tbl.flush()
			})
		},
	}
}

func newRegTokenRevoke(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an initial access token; it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withApp(cmd, func(ctx context.Context, a *app.App) error {
				if err := a.Store.DeleteRegistrationToken(ctx, args[0]); err != nil {
					return notFound(err, "registration token", args[0])
				}
				fmt.Fprintf(e.stdout, "revoked registration token %s\n", args[0])
				return nil
			})
		},
	}
}
