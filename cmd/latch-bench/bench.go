package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// Result is one run, as printed with -json and read back by -report.
type Result struct {
	Label       string              `json:"label,omitempty"`
	Scenario    string              `json:"scenario"`
	IDToken     bool                `json:"id_token"`
	Concurrency int                 `json:"concurrency"`
	Seconds     float64             `json:"seconds"`
	Ops         int64               `json:"ops"`
	OpsPerSec   float64             `json:"ops_per_sec"`
	Latency     Latency             `json:"latency_ms"`
	Errors      map[string]int64    `json:"errors"`
	ErrorCount  int64               `json:"error_count"`
	PerOp       map[string]*OpStats `json:"per_op,omitempty"`
	// CPU is in cores (CPU seconds per wall second) over the measured
	// window; RSS is the largest sample taken during it.
	ServerCPU   float64 `json:"server_cpu_cores,omitempty"`
	ServerRSSMB float64 `json:"server_rss_mb,omitempty"`
	DBCPU       float64 `json:"db_cpu_cores,omitempty"`
	ToolCPU     float64 `json:"tool_cpu_cores"`
	// LoadAvg is the machine's 1-minute load average when the run ended:
	// anything above the cores the run itself used is someone else's work.
	LoadAvg float64 `json:"loadavg_1m"`
}

// Latency percentiles in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// OpStats is one operation kind within a run (interesting for "mixed").
type OpStats struct {
	Ops     int64   `json:"ops"`
	Latency Latency `json:"latency_ms"`
}

func percentiles(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	at := func(p float64) float64 {
		i := int(p*float64(len(d))+0.5) - 1
		i = max(0, min(i, len(d)-1))
		return float64(d[i].Microseconds()) / 1000
	}
	return Latency{P50: at(.50), P95: at(.95), P99: at(.99), Max: float64(d[len(d)-1].Microseconds()) / 1000}
}

// sample is what a worker records per measured operation.
type sample struct {
	kind string
	dur  time.Duration
	err  error
}

func bench(ctx context.Context, o options, log io.Writer) (*Result, error) {
	id, sec := o.clientID, o.secret
	if o.dsn != "" {
		var err error
		if id, sec, err = createClient(ctx, o.dsn); err != nil {
			return nil, err
		}
	}
	tr := newTransport(o.concurrency)
	defer tr.CloseIdleConnections()
	b := &bencher{
		o: o, tr: tr, clientID: id,
		hc:        &http.Client{Transport: tr, CheckRedirect: noRedirect, Timeout: 30 * time.Second},
		basicAuth: "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(sec))),
	}
	sc := scenarios[o.scenario]

	workers := make([]*worker, o.concurrency)
	for i := range workers {
		workers[i] = &worker{b: b, rng: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))), steps: map[string][]time.Duration{}}
		if sc.setup != nil {
			if err := sc.setup(ctx, workers[i]); err != nil {
				return nil, fmt.Errorf("setup of worker %d: %w", i, err)
			}
		}
	}

	start := time.Now()
	measureFrom := start.Add(o.warmup)
	measureTo := measureFrom.Add(o.duration)
	var (
		measured atomic.Int64
		wg       sync.WaitGroup
		results  = make([][]sample, o.concurrency)
	)
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(measureTo) {
					return
				}
				inWindow := !t0.Before(measureFrom)
				if inWindow && o.maxOps > 0 && measured.Add(1) > o.maxOps {
					return
				}
				w.recording = inWindow
				kind, err := sc.op(ctx, w)
				w.recording = false
				if inWindow {
					results[i] = append(results[i], sample{kind: kind, dur: time.Since(t0), err: err})
				}
				if err != nil && sc.setup != nil && ctx.Err() == nil {
					// The failed op may have spent this worker's token.
					_ = sc.setup(ctx, w)
				}
			}
		}()
	}

	// Resource samples bracket the measured window.
	var (
		cpu0, tool0 float64
		db0         map[int]float64
		rssMax      float64
		stopRSS     = make(chan struct{})
		rssDone     = make(chan struct{})
	)
	select {
	case <-time.After(time.Until(measureFrom)):
	case <-ctx.Done():
	}
	if o.serverPID > 0 {
		cpu0, _ = cpuSeconds(o.serverPID)
	}
	if o.dbPID > 0 {
		db0 = treeCPU(o.dbPID)
	}
	tool0, _ = cpuSeconds(os.Getpid())
	go func() {
		defer close(rssDone)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if o.serverPID > 0 {
				if r, err := rssMB(o.serverPID); err == nil && r > rssMax {
					rssMax = r
				}
			}
			select {
			case <-stopRSS:
				return
			case <-t.C:
			}
		}
	}()
	wg.Wait()
	end := time.Now()
	close(stopRSS)
	<-rssDone

	wall := end.Sub(measureFrom).Seconds()
	res := &Result{Label: o.label, Scenario: o.scenario, IDToken: o.idToken, Concurrency: o.concurrency,
		Seconds: wall, Errors: map[string]int64{}, PerOp: map[string]*OpStats{}}
	if o.serverPID > 0 {
		if cpu1, err := cpuSeconds(o.serverPID); err == nil {
			res.ServerCPU = (cpu1 - cpu0) / wall
		}
		res.ServerRSSMB = rssMax
	}
	if o.dbPID > 0 {
		res.DBCPU = treeDelta(db0, treeCPU(o.dbPID)) / wall
	}
	res.LoadAvg = loadAvg()
	if tool1, err := cpuSeconds(os.Getpid()); err == nil {
		res.ToolCPU = (tool1 - tool0) / wall
	}
	var all []time.Duration
	perKind := map[string][]time.Duration{}
	for _, rs := range results {
		for _, s := range rs {
			if s.err != nil {
				var be *benchError
				kind := s.err.Error()
				if errors.As(s.err, &be) {
					kind = be.kind
				}
				res.Errors[kind]++
				res.ErrorCount++
				continue
			}
			all = append(all, s.dur)
			perKind[s.kind] = append(perKind[s.kind], s.dur)
		}
	}
	res.Ops = int64(len(all))
	res.OpsPerSec = float64(res.Ops) / wall
	res.Latency = percentiles(all)
	for _, w := range workers {
		for k, d := range w.steps {
			perKind[k] = append(perKind[k], d...)
		}
	}
	if len(perKind) > 1 {
		for k, d := range perKind {
			res.PerOp[k] = &OpStats{Ops: int64(len(d)), Latency: percentiles(d)}
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(log, "latch-bench: interrupted; results cover the time until then")
	}
	return res, nil
}

func (r *Result) name() string {
	if r.Scenario == "refresh" && !r.IDToken {
		return "refresh (no ID token)"
	}
	if r.Scenario == "refresh" {
		return "refresh (ID token)"
	}
	return r.Scenario
}

func (r *Result) writeTable(out io.Writer) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\t%s\n", r.name())
	if r.Label != "" {
		fmt.Fprintf(tw, "label\t%s\n", r.Label)
	}
	fmt.Fprintf(tw, "concurrency\t%d\n", r.Concurrency)
	fmt.Fprintf(tw, "measured\t%.1f s, %d ops\n", r.Seconds, r.Ops)
	fmt.Fprintf(tw, "throughput\t%.0f ops/s\n", r.OpsPerSec)
	fmt.Fprintf(tw, "latency ms\tp50 %.2f  p95 %.2f  p99 %.2f  max %.2f\n", r.Latency.P50, r.Latency.P95, r.Latency.P99, r.Latency.Max)
	fmt.Fprintf(tw, "errors\t%d\n", r.ErrorCount)
	kinds := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(tw, "  %s\t%d\n", k, r.Errors[k])
	}
	ops := make([]string, 0, len(r.PerOp))
	for k := range r.PerOp {
		ops = append(ops, k)
	}
	sort.Strings(ops)
	for _, k := range ops {
		s := r.PerOp[k]
		fmt.Fprintf(tw, "  %s\t%d ops, p50 %.2f  p99 %.2f ms\n", k, s.Ops, s.Latency.P50, s.Latency.P99)
	}
	if r.ServerCPU > 0 || r.ServerRSSMB > 0 {
		fmt.Fprintf(tw, "server\tCPU %.2f cores, RSS max %.0f MB\n", r.ServerCPU, r.ServerRSSMB)
	}
	if r.DBCPU > 0 {
		fmt.Fprintf(tw, "database\tCPU %.2f cores\n", r.DBCPU)
	}
	fmt.Fprintf(tw, "load tool\tCPU %.2f cores\n", r.ToolCPU)
	fmt.Fprintf(tw, "machine\tload average %.2f\n", r.LoadAvg)
	tw.Flush()
}
