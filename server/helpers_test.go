package server_test

import (
	"net/url"

	"github.com/latchhq/latch/config"
)

// withScopes adds scopes the way LATCH_SCOPES would.
func withScopes(spec string) func(*config.Config) {
	return func(c *config.Config) {
		cfg, err := config.Load(config.LoadOptions{Environ: []string{"LATCH_SCOPES=" + spec}})
		if err != nil {
			panic(err)
		}
		c.Scopes = cfg.Scopes
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
