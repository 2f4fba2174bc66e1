package config

// docs/configuration.md is generated from Config, its defaults and
// config.example.yaml; TestConfigurationDoc fails when it is stale.
//go:generate go test -run TestConfigurationDoc -update .

import "regexp"

// orchestratorVar matches exactly the variables Kubernetes injects into
// every pod of a namespace for a Service named "latch" (docker links use the
// same LATCH_PORT_* forms). They are not ours, and refusing to start over
// them would make a Service named after the product break the product.
var orchestratorVar = regexp.MustCompile(`^LATCH_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_[0-9]+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$`)

// isOrchestratorVar reports whether name is injected by an orchestrator
// rather than set by the operator, so Load ignores it.
func isOrchestratorVar(name string) bool { return orchestratorVar.MatchString(name) }

// validateListeners checks the optional admin listener and the shutdown
// bound.
func (c *Config) validateListeners(ps *problems) {
	if c.HTTP.ShutdownTimeout < 0 {
		ps.add("http.shutdown_timeout", "must not be negative, got %s", c.HTTP.ShutdownTimeout)
	}
	if c.HTTP.AdminAddr == "" {
		return
	}
	const key = "http.admin_addr"
	if !validateHostPort(ps, key, c.HTTP.AdminAddr, "127.0.0.1:9090") {
		return
	}
	if c.HTTP.AdminAddr == c.HTTP.Addr {
		ps.add(key, "%q is the public listen address; give the admin listener its own port", c.HTTP.AdminAddr)
	}
}
