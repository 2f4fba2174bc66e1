package server_test

import (
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/server"
)

// TestAPIMountedInOnePlace: the server hands out no group to mount /api
// routes on from outside (Server.API was one: a route mounted on the wrong
// group there skips the key), and every /api route it serves refuses a
// request without the admin API key, except the two that describe the
// server rather than its users.
func TestAPIMountedInOnePlace(t *testing.T) {
	typ := reflect.TypeOf(server.Server{})
	for i := range typ.NumField() {
		if f := typ.Field(i); f.IsExported() {
			t.Errorf("server.Server exports field %s (%s): routes are mounted by server.New from its Deps", f.Name, f.Type)
		}
	}

	env := latchtest.Start(t, latchtest.Options{Configure: func(c *config.Config) { c.Registration = config.RegistrationOpen }})
	keyless := map[string]bool{"GET /api/scopes": true, "GET /api/openapi.json": true}
	param := regexp.MustCompile(`:[a-z_]+`)
	seen := 0
	for _, r := range env.Server.AdminEcho().Routes() {
		if r.Path != "/api" && !strings.HasPrefix(r.Path, "/api/") || r.Method == echo.RouteNotFound {
			continue
		}
		seen++
		req, err := http.NewRequest(r.Method, env.URL+param.ReplaceAllString(r.Path, "x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-Key", "latch_not_a_key_0123456789abcdefghijklmnopqrstuvwxyz")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		op := r.Method + " " + r.Path
		switch {
		case keyless[op] && resp.StatusCode != http.StatusOK:
			t.Errorf("%s: %d, want 200 without a key", op, resp.StatusCode)
		case !keyless[op] && resp.StatusCode != http.StatusUnauthorized:
			t.Errorf("%s with a wrong key: %d, want 401", op, resp.StatusCode)
		}
	}
	// approval, clients, registration tokens, audit and sessions.
	if seen < 19 {
		t.Errorf("only %d /api routes: a package's routes are not mounted", seen)
	}
}
