package stack

import (
	"github.com/latchhq/latch/config"
)

// ConfigureResources registers uris as RFC 8707 resource servers (config
// `resources`, LATCH_RESOURCES), so tokens may name them as their audience
// and the host app's API can insist on its own.
func ConfigureResources(cfg *config.Config, uris ...string) {
	for _, u := range uris {
		cfg.Resources = append(cfg.Resources, config.Resource{URI: u, Name: u})
	}
}
