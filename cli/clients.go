package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchhq/latch/app"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/endpoint"
	"github.com/latchhq/latch/paging"
	"github.com/latchhq/latch/provider"
	"github.com/latchhq/latch/storage"
)

// withApp runs fn on the configured database, as the CLI actor in the audit
// log, and closes everything after.
func (e *env) withApp(cmd *cobra.Command, fn func(ctx context.Context, a *app.App) error) error {
	a, err := e.openApp(cmd, false)
	if err != nil {
		return err
	}
	defer a.Close()
	ctx := audit.WithActor(cmd.Context(), audit.ActorCLI, e.osUser())
	return fn(ctx, a)
}

// osUser names who ran the command, as well as the environment says.
func (e *env) osUser() string {
	for _, kv := range e.environ {
		if v, ok := strings.CutPrefix(kv, "USER="); ok {
			return v
		}
	}
	return ""
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// notFound turns a storage miss into a line a person can act on.
func notFound(err error, what, id string) error {
	if storage.IsNotFound(err) {
		return fmt.Errorf("no %s with id %q", what, id)
	}
	return err
}

func newClients(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "clients", Short: "Register, list, show and delete OAuth clients", Args: cobra.NoArgs}
	cmd.AddCommand(newClientsCreate(e), newClientsList(e), newClientsShow(e), newClientsDelete(e))
	return cmd
}

func newClientsCreate(e *env) *cobra.Command {
	var m clients.Metadata
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Register a client; prints it with its secret, which is shown only this once",
		Example: `  latch clients create --name "My app" --redirect-uri https://app.example/cb --grant-type authorization_code,refresh_token
  latch clients create --name "Native app" --redirect-uri http://127.0.0.1/cb --auth-method none
  latch clients create --name "Batch job" --grant-type client_credentials --scope api.read
  latch clients create --name "Bank app" --redirect-uri https://bank.example/cb --dpop-bound --require-par --id-token-alg RS256`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("grant-type") {
				m.GrantTypes = nil
			}
			return e.withApp(cmd, func(ctx context.Context, a *app.App) error {
				c, plain, err := a.Clients().Create(ctx, m)
				if err != nil {
					return err
				}
				return printJSON(e.stdout, clients.NewView(c, plain))
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&m.ClientName, "name", "", "client_name shown to users")
	f.StringArrayVar(&m.RedirectURIs, "redirect-uri", nil, "redirect URI (repeatable)")
	f.StringSliceVar(&m.GrantTypes, "grant-type", nil, "grant types: "+strings.Join(provider.GrantTypes, ", ")+" (default "+provider.GrantAuthorizationCode+")")
	f.StringVar(&m.Scope, "scope", "", "space-separated scopes the client may request (default: all configured)")
	f.StringVar(&m.TokenEndpointAuthMethod, "auth-method", "", "one of "+strings.Join(provider.TokenEndpointAuthMethods, ", ")+" (default "+provider.AuthSecretBasic+"; "+provider.AuthNone+" is a public client)")
	f.StringVar(&m.JWKSURI, "jwks-uri", "", "jwks_uri for private_key_jwt")
	f.StringVar(&m.TokenEndpointAuthSigningAlg, "auth-signing-alg", "", "private_key_jwt assertion algorithm: one of "+strings.Join(provider.ClientAssertionAlgs, ", ")+" (default: implied by the client's keys)")
	f.StringVar(&m.IDTokenSignedResponseAlg, "id-token-alg", "", "ID token signing algorithm: one of "+strings.Join(provider.IDTokenSigningAlgs, ", ")+" (default: the server's tokens.id_token_signing_alg)")
	f.BoolVar(&m.DPoPBoundAccessTokens, "dpop-bound", false, "refuse this client tokens without a DPoP proof (dpop_bound_access_tokens)")
	f.BoolVar(&m.RequirePushedAuthRequests, "require-par", false, "accept only pushed authorization requests from this client (require_pushed_authorization_requests)")
	f.StringArrayVar(&m.PostLogoutRedirectURIs, "post-logout-redirect-uri", nil, "where "+endpoint.Logout+" may return the browser (repeatable)")
	f.StringVar(&m.BackchannelLogoutURI, "backchannel-logout-uri", "", "https URL that receives back-channel logout tokens")
	f.BoolVar(&m.BackchannelLogoutSessionRequired, "backchannel-logout-session-required", false, "logout tokens must carry sid (backchannel_logout_session_required)")
	f.StringVar(&m.Owner, "owner", "", "host-app user who owns the client")
	f.StringVar(&m.ClientURI, "client-uri", "", "client home page (https)")
	f.StringVar(&m.LogoURI, "logo-uri", "", "logo URL (https)")
	f.StringArrayVar(&m.Contacts, "contact", nil, "contact (repeatable)")
	return cmd
}

func newClientsList(e *env) *cobra.Command {
	var owner string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withApp(cmd, func(ctx context.Context, a *app.App) error {
				t := newTable(e.stdout, "CLIENT_ID", "NAME", "OWNER", "AUTH", "GRANT_TYPES")
				after := ""
				for {
					page, err := a.Clients().List(ctx, owner, after, paging.Max)
					if err != nil {
						return err
					}
					for _, c := range page {
						t.row(c.ID, c.Name, c.Owner, c.TokenEndpointAuthMethod, strings.Join(c.GrantTypes, ","))
					}
					if len(page) < paging.Max {
						break
					}
					after = page[len(page)-1].ID
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().StringVar(&owner, "owner", "", "only clients of this owner")
	return cmd
}

func newClientsShow(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "show CLIENT_ID",
		Short: "Show a client's metadata (never its secret)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withApp(cmd, func(ctx context.Context, a *app.App) error {
				c, err := a.Clients().Get(ctx, args[0])
				if err != nil {
					return notFound(err, "client", args[0])
				}
				return printJSON(e.stdout, clients.NewView(c, ""))
			})
		},
	}
}

func newClientsDelete(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "delete CLIENT_ID",
		Short: "Delete a client and revoke every token issued to it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withApp(cmd, func(ctx context.Context, a *app.App) error {
				if err := a.Clients().Delete(ctx, args[0]); err != nil {
					return notFound(err, "client", args[0])
				}
				fmt.Fprintf(e.stdout, "deleted client %s and revoked its tokens\n", args[0])
				return nil
			})
		},
	}
}
