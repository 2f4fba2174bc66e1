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
// markdown table docs/performance.md shows.
func renderReport(path string, out io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var rs []Result
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
		rs = append(rs, r)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	fmt.Fprintln(out, "| backend | scenario | c | ops/s | p50 ms | p95 ms | p99 ms | max ms | errors | Latch CPU (cores) | DB CPU (cores) | tool CPU (cores) | Latch RSS MB |")
	fmt.Fprintln(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		errs := fmt.Sprint(r.ErrorCount)
		if r.ErrorCount > 0 {
			kinds := make([]string, 0, len(r.Errors))
			for k, n := range r.Errors {
				kinds = append(kinds, fmt.Sprintf("%s ×%d", k, n))
			}
			sort.Strings(kinds)
			errs += " (" + strings.Join(kinds, "; ") + ")"
		}
		db := "–"
		if r.DBCPU > 0 {
			db = fmt.Sprintf("%.2f", r.DBCPU)
		}
		fmt.Fprintf(out, "| %s | %s | %d | %.0f | %.2f | %.2f | %.2f | %.1f | %s | %.2f | %s | %.2f | %.0f |\n",
			r.Label, r.name(), r.Concurrency, r.OpsPerSec, r.Latency.P50, r.Latency.P95, r.Latency.P99, r.Latency.Max,
			errs, r.ServerCPU, db, r.ToolCPU, r.ServerRSSMB)
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
