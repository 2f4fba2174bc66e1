// Command thirdparty runs the example third-party app against a running
// Latch, as a client registered with redirect URI http://ADDR/callback:
//
//	go run ./examples/thirdparty/cmd -issuer http://127.0.0.1:8080 -client-id ... -client-secret ... -api http://127.0.0.1:9081/api
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/latchhq/latch/examples/thirdparty"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9082", "listen address")
	issuer := flag.String("issuer", "http://127.0.0.1:8080", "Latch's issuer URL")
	id := flag.String("client-id", "", "client id")
	sec := flag.String("client-secret", os.Getenv("CLIENT_SECRET"), "client secret (default $CLIENT_SECRET)")
	api := flag.String("api", "http://127.0.0.1:9081/api", "the host app's API (and resource)")
	flag.Parse()
	public := "http://" + *addr
	app, err := thirdparty.New(context.Background(), thirdparty.Config{PublicURL: public, Issuer: *issuer, ClientID: *id, ClientSecret: *sec, API: *api})
	if err != nil {
		fmt.Fprintln(os.Stderr, "thirdparty:", err)
		os.Exit(1)
	}
	fmt.Printf("PhotoPrints on %s (redirect URI %s)\n", public, app.RedirectURI())
	srv := &http.Server{Addr: *addr, Handler: app, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "thirdparty:", err)
		os.Exit(1)
	}
}
