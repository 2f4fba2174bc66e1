// Command latch-bench drives a running Latch over HTTP and reports
// throughput, latency percentiles, errors by kind and the server's CPU and
// memory. It only talks to loopback addresses and always stops after
// -duration (or -max-ops), so it cannot be pointed at someone else's server
// or left running by accident.
//
//	latch-bench -url http://127.0.0.1:8080 -dsn sqlite:///tmp/latch.db \
//	    -scenario refresh -concurrency 8 -duration 10s -server-pid 1234
//
// Setup (an OAuth client with every grant) is made directly in the
// database when -dsn is given (LATCH_MASTER_KEY must match the server's), or
// taken from -client-id/-client-secret.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"
)

// Limits that keep a mistyped flag from becoming an accidental load test.
const (
	maxDuration    = 10 * time.Minute
	maxConcurrency = 1024
)

type options struct {
	url         string
	scenario    string
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	maxOps      int64
	dsn         string
	apiKey      string
	clientID    string
	secret      string
	redirectURI string
	idToken     bool
	serverPID   int
	dbPID       int
	json        bool
	label       string
	report      string
	waitReady   bool
	since       int64
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "latch-bench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("latch-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "Latch base URL (loopback only)")
	fs.StringVar(&o.scenario, "scenario", "client-credentials", "flow, refresh, client-credentials, introspect, userinfo or mixed")
	fs.IntVar(&o.concurrency, "concurrency", 8, "concurrent workers")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time (at most 10m)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured time before measuring")
	fs.Int64Var(&o.maxOps, "max-ops", 0, "stop after this many measured operations (0: only -duration)")
	fs.StringVar(&o.dsn, "dsn", "", "open the server's database to create the bench client (needs LATCH_MASTER_KEY)")
	fs.StringVar(&o.apiKey, "api-key", os.Getenv("LATCH_API_KEY"), "admin API key for the approval API (default $LATCH_API_KEY)")
	fs.StringVar(&o.clientID, "client-id", "", "existing confidential client with every grant (instead of -dsn)")
	fs.StringVar(&o.secret, "client-secret", "", "its secret")
	fs.StringVar(&o.redirectURI, "redirect-uri", benchRedirectURI, "its redirect URI")
	fs.BoolVar(&o.idToken, "id-token", true, "refresh: request openid, so every refresh also signs an ID token")
	fs.IntVar(&o.serverPID, "server-pid", 0, "Latch's pid, for its CPU and RSS")
	fs.IntVar(&o.dbPID, "db-pid", 0, "database server pid (PostgreSQL postmaster: its backends are counted too)")
	fs.BoolVar(&o.json, "json", false, "print one JSON object instead of a table")
	fs.StringVar(&o.label, "label", "", "free text carried into the result (e.g. the backend)")
	fs.StringVar(&o.report, "report", "", "render a markdown table from a file of -json results, then exit")
	fs.BoolVar(&o.waitReady, "wait-ready", false, "poll /health/ready until it answers 200, print the ms since -since, exit")
	fs.Int64Var(&o.since, "since", 0, "unix time in ns when the server was started (with -wait-ready)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.report != "" {
		return renderReport(o.report, stdout)
	}
	if err := checkLoopback(o.url); err != nil {
		return err
	}
	o.url = strings.TrimRight(o.url, "/")
	if o.waitReady {
		return waitReady(o, stdout)
	}
	if err := o.validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := bench(ctx, o, stderr)
	if err != nil {
		return err
	}
	if o.json {
		return json.NewEncoder(stdout).Encode(res)
	}
	res.writeTable(stdout)
	return nil
}

func (o *options) validate() error {
	var errs []error
	if _, ok := scenarios[o.scenario]; !ok {
		errs = append(errs, fmt.Errorf("unknown -scenario %q", o.scenario))
	}
	if o.concurrency < 1 || o.concurrency > maxConcurrency {
		errs = append(errs, fmt.Errorf("-concurrency must be 1..%d", maxConcurrency))
	}
	if o.duration <= 0 || o.duration > maxDuration {
		errs = append(errs, fmt.Errorf("-duration must be in (0, %s]", maxDuration))
	}
	if o.warmup < 0 || o.warmup > maxDuration {
		errs = append(errs, fmt.Errorf("-warmup must be in [0, %s]", maxDuration))
	}
	if o.maxOps < 0 {
		errs = append(errs, errors.New("-max-ops must be ≥ 0"))
	}
	if o.dsn == "" && (o.clientID == "" || o.secret == "") {
		errs = append(errs, errors.New("give -dsn (to create a client) or -client-id and -client-secret"))
	}
	if (o.scenario == "flow" || o.scenario == "refresh" || o.scenario == "userinfo" || o.scenario == "mixed") && o.apiKey == "" {
		errs = append(errs, fmt.Errorf("-scenario %s approves sign-ins: give -api-key or LATCH_API_KEY", o.scenario))
	}
	return errors.Join(errs...)
}
