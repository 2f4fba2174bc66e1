package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
)

// renderReport turns a file of -json results (one per line) into the
// markdown table docs/performance.md shows. Repeated runs of the same
// backend, scenario and concurrency become one row holding the median of
// each figure, and the errors of all of them.
func renderReport(path string, out io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var (
		order  []string
		groups = map[string][]Result{}
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		k := fmt.Sprintf("%s|%s|%d", r.Label, r.name(), r.Concurrency)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	fmt.Fprintln(out, "| backend | scenario | c | runs | ops/s | p50 ms | p95 ms | p99 ms | max ms | errors | Latch CPU ms/op | DB CPU ms/op | Latch cores | DB cores | tool cores | load avg | Latch RSS MB |")
	fmt.Fprintln(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, k := range order {
		rs := groups[k]
		med := func(f func(Result) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			sort.Float64s(v)
			if len(v)%2 == 1 {
				return v[len(v)/2]
			}
			return (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		var nErr int64
		kinds := map[string]int64{}
		for _, r := range rs {
			nErr += r.ErrorCount
			for kind, n := range r.Errors {
				kinds[kind] += n
			}
		}
		errs := fmt.Sprint(nErr)
		if nErr > 0 {
			list := make([]string, 0, len(kinds))
			for kind, n := range kinds {
				list = append(list, fmt.Sprintf("%s ×%d", kind, n))
			}
			sort.Strings(list)
			errs += " (" + strings.Join(list, "; ") + ")"
		}
		// CPU per operation moves far less than throughput when other work
		// competes for the cores, so it is the figure to compare runs by.
		perOp := func(cores func(Result) float64) func(Result) float64 {
			return func(r Result) float64 {
				if r.OpsPerSec == 0 {
					return 0
				}
				return cores(r) * 1000 / r.OpsPerSec
			}
		}
		db, dbOp := "–", "–"
		if d := med(func(r Result) float64 { return r.DBCPU }); d > 0 {
			db = fmt.Sprintf("%.2f", d)
			dbOp = fmt.Sprintf("%.3f", med(perOp(func(r Result) float64 { return r.DBCPU })))
		}
		r := rs[0]
		fmt.Fprintf(out, "| %s | %s | %d | %d | %.0f | %.2f | %.2f | %.2f | %.1f | %s | %.3f | %s | %.2f | %s | %.2f | %.1f | %.0f |\n",
			r.Label, r.name(), r.Concurrency, len(rs),
			med(func(r Result) float64 { return r.OpsPerSec }),
			med(func(r Result) float64 { return r.Latency.P50 }),
			med(func(r Result) float64 { return r.Latency.P95 }),
			med(func(r Result) float64 { return r.Latency.P99 }),
			med(func(r Result) float64 { return r.Latency.Max }),
			errs,
			med(perOp(func(r Result) float64 { return r.ServerCPU })), dbOp,
			med(func(r Result) float64 { return r.ServerCPU }), db,
			med(func(r Result) float64 { return r.ToolCPU }),
			med(func(r Result) float64 { return r.LoadAvg }),
			med(func(r Result) float64 { return r.ServerRSSMB }))
	}
	return renderSteps(order, groups, out)
}

// renderSteps shows each HTTP step of the sign-in flows: a flow is four
// requests, so its own latency is about four times theirs.
func renderSteps(order []string, groups map[string][]Result, out io.Writer) error {
	header := false
	for _, k := range order {
		rs := groups[k]
		var steps []string
		for name := range rs[0].PerOp {
			if strings.HasPrefix(name, "flow/") {
				steps = append(steps, name)
			}
		}
		if rs[0].Scenario != "flow" || len(steps) == 0 {
			continue
		}
		if !header {
			fmt.Fprint(out, "\nEach request of the `flow` rows above (median of the runs):\n\n")
			fmt.Fprintln(out, "| backend | c | step | p50 ms | p95 ms | p99 ms | max ms |")
			fmt.Fprintln(out, "|---|---:|---|---:|---:|---:|---:|")
			header = true
		}
		sort.Strings(steps)
		for _, st := range steps {
			med := func(f func(Latency) float64) float64 {
				var v []float64
				for _, r := range rs {
					if s, ok := r.PerOp[st]; ok {
						v = append(v, f(s.Latency))
					}
				}
				sort.Float64s(v)
				return v[len(v)/2]
			}
			fmt.Fprintf(out, "| %s | %d | %s | %.2f | %.2f | %.2f | %.1f |\n", rs[0].Label, rs[0].Concurrency, strings.TrimPrefix(st, "flow/"),
				med(func(l Latency) float64 { return l.P50 }), med(func(l Latency) float64 { return l.P95 }),
				med(func(l Latency) float64 { return l.P99 }), med(func(l Latency) float64 { return l.Max }))
		}
	}
	return nil
}

// waitReady polls /health/ready every 2 ms and prints the milliseconds since
// o.since (the server's launch), for the start-to-ready figure.
func waitReady(o options, out io.Writer) error {
	c := &http.Client{Transport: newTransport(1), Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := c.Get(o.url + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if o.since > 0 {
					fmt.Fprintf(out, "%.0f\n", float64(time.Now().UnixNano()-o.since)/1e6)
				}
				return nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within 30s", o.url)
}
