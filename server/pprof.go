package server

import (
	"net/http"
	"net/http/pprof"
	"time"
)

// PprofHandler serves Go's profiler. It is never mounted on the main
// listener: cli serves it on its own loopback address when pprof.enabled.
func PprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// PprofServer wraps PprofHandler; its write timeout leaves room for a 60 s
// CPU profile.
func PprofServer(addr string) *http.Server {
	return &http.Server{Addr: addr, Handler: PprofHandler(), ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 2 * time.Minute}
}
