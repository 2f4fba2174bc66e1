package cli

import (
	"fmt"
	"sort"

	"github.com/spf13/cobra"
)

func newJanitor(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "janitor",
		Short: "Delete expired sessions, codes, tokens and replay-cache entries once (serve also does this every janitor.interval)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := e.openApp(cmd, false)
			if err != nil {
				return err
			}
			defer a.Close()
			res, err := a.Purge(cmd.Context())
			names := make([]string, 0, len(res))
			for name := range res {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				fmt.Fprintf(e.stdout, "%-22s %d\n", name, res[name])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "deleted %d expired rows\n", res.Total())
			return nil
		},
	}
}
