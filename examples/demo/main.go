// Command demo starts the whole story on loopback ports — Latch, the host
// app "ExampleApp" (its approval page and API) and the third-party app
// "PhotoPrints" — and prints the URL to open:
//
//	go run ./examples/demo
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/latchhq/latch/examples/stack"
)

func main() {
	latchAddr := flag.String("latch", "127.0.0.1:9080", "Latch's listen address")
	hostAddr := flag.String("host", "127.0.0.1:9081", "the host app's listen address")
	tpAddr := flag.String("thirdparty", "127.0.0.1:9082", "the third-party app's listen address")
	dataDir := flag.String("data", "", "directory for Latch's database (default: a temporary one, removed at exit)")
	flag.Parse()
	if err := run(*latchAddr, *hostAddr, *tpAddr, *dataDir); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(latchAddr, hostAddr, tpAddr, dataDir string) error {
	if dataDir == "" {
		d, err := os.MkdirTemp("", "latch-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dataDir = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := stack.Start(ctx, stack.Options{LatchAddr: latchAddr, HostAddr: hostAddr, ThirdPartyAddr: tpAddr, DataDir: dataDir, Log: log})
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Printf(`Latch            %s
ExampleApp       %s   (the host app: approval page, connected apps, API)
PhotoPrints      %s   (a third-party app)

Open %s and click "Sign in with ExampleApp".
Log in as alice / wonderland (or bob / builder). Ctrl-C stops everything.
`, s.LatchURL, s.HostURL, s.ThirdPartyURL, s.ThirdPartyURL)
	<-ctx.Done()
	return nil
}
