package server_test

import (
	"net/url"
	"testing"

	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/latchtest"
)

// BenchmarkTokenEndpoint is a whole token request in-process (real HTTP on
// loopback, real SQLite), per grant, with SQL statements per operation
// reported beside the time.
func BenchmarkTokenEndpoint(b *testing.B) {
	env := latchtest.Start(b, latchtest.Options{})
	c := env.CreateClient(clients.Metadata{ClientName: "bench", RedirectURIs: []string{"https://client.example/cb"},
		GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"}, Scope: "openid offline_access"})
	count := latchtest.CountSQL(env.App.Store.DB())
	g := &grantOps{t: b, env: env, web: c, count: count}
	post := func(_ *testing.B, path string, form url.Values) map[string]any {
		return g.form(path, form, c.ID, c.Secret)
	}
	run := func(b *testing.B, op func() url.Values, path string, after func(map[string]any)) {
		count.Take()
		for b.Loop() {
			out := post(b, path, op())
			if after != nil {
				after(out)
			}
		}
		b.ReportMetric(float64(count.Take().Statements)/float64(b.N), "stmts/op")
	}

	b.Run("client_credentials", func(b *testing.B) {
		run(b, func() url.Values { return url.Values{"grant_type": {"client_credentials"}} }, "/oauth2/token", nil)
	})
	cc := post(b, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}})["access_token"].(string)
	b.Run("introspection", func(b *testing.B) {
		run(b, func() url.Values { return url.Values{"token": {cc}} }, "/oauth2/introspect", nil)
	})

	refresh := g.login(nil)["refresh_token"].(string)
	b.Run("refresh_id_token", func(b *testing.B) {
		run(b, func() url.Values { return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}} },
			"/oauth2/token", func(out map[string]any) { refresh = out["refresh_token"].(string) })
	})
	b.Run("code_flow", func(b *testing.B) {
		count.Take()
		for b.Loop() {
			g.login(nil)
		}
		b.ReportMetric(float64(count.Take().Statements)/float64(b.N), "stmts/op")
	})
}
