// Command hostapp runs the example host app against a running Latch whose
// LATCH_APPROVAL_URL is this app's /oauth/approve:
//
//	go run ./examples/hostapp/cmd -latch http://127.0.0.1:8080 -api-key "$LATCH_API_KEY"
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/latchhq/latch/examples/hostapp"
	"github.com/latchhq/latch/examples/stack"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9081", "listen address")
	latch := flag.String("latch", "http://127.0.0.1:8080", "Latch's issuer URL")
	key := flag.String("api-key", os.Getenv("LATCH_API_KEY"), "Latch admin API key (default $LATCH_API_KEY)")
	flag.Parse()
	public := "http://" + *addr
	app, err := hostapp.New(hostapp.Config{PublicURL: public, LatchIssuer: *latch, LatchAPIKey: *key, Users: stack.DemoUsers})
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostapp:", err)
		os.Exit(1)
	}
	fmt.Printf("ExampleApp on %s; start Latch with LATCH_APPROVAL_URL=%s\n", public, app.ApprovalURL())
	srv := &http.Server{Addr: *addr, Handler: app, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "hostapp:", err)
		os.Exit(1)
	}
}
