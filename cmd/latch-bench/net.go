package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// checkLoopback refuses any target that is not this machine.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-url %q: want http(s)://host:port", raw)
	}
	if !isLoopback(u.Hostname()) {
		return fmt.Errorf("-url %q: only loopback targets (127.0.0.0/8, ::1, localhost) are allowed", raw)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newTransport dials loopback addresses only, whatever URL a redirect or an
// API answer points at, and keeps enough idle connections for every worker.
func newTransport(conns int) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if !isLoopback(host) {
				return nil, fmt.Errorf("refusing non-loopback address %s", addr)
			}
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        conns * 4,
		MaxIdleConnsPerHost: conns * 4,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
