package server_test

import (
	"net/url"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
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

// postForm is latchtest.PostForm under the name these tests use.
var postForm = latchtest.PostForm

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
