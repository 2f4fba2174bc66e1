// Command latch is an OAuth 2.1 authorization server and OpenID Connect
// provider that delegates the login and consent decision to a host app.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/latchhq/latch/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
