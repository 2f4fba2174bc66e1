package openapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/latchhq/latch/clients"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/openapi"
	"github.com/latchhq/latch/provider"
)

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// TestDocumentMatchesRoutes holds the document and the router to the same
// set of /api operations, both ways.
func TestDocumentMatchesRoutes(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		t.Fatalf("document is not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+pathParam.ReplaceAllString(p, ":$1")] = true
		}
	}
	routed := map[string]bool{}
	for _, r := range env.Server.Echo().Routes() {
		if !strings.HasPrefix(r.Path, "/api/") || strings.HasPrefix(r.Method, "echo_") {
			continue // group catch-alls (echo_route_not_found) are not operations
		}
		routed[r.Method+" "+r.Path] = true
	}
	if len(routed) < 10 {
		t.Fatalf("only %d /api routes found: %v", len(routed), routed)
	}
	for op := range routed {
		if !documented[op] {
			t.Errorf("route %s is not in openapi.json", op)
		}
	}
	for op := range documented {
		if !routed[op] {
			t.Errorf("openapi.json documents %s, which is not routed", op)
		}
	}
	if t.Failed() {
		var all []string
		for op := range routed {
			all = append(all, op)
		}
		sort.Strings(all)
		t.Logf("routes: %s", strings.Join(all, "\n"))
	}
}

func TestDocumentIsServedWithoutKey(t *testing.T) {
	env := latchtest.Start(t, latchtest.Options{})
	resp, err := http.Get(env.URL + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /api/openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if string(body) != string(openapi.Document()) {
		t.Error("served document differs from the embedded one")
	}
}

// TestClientSchemaMatchesMetadata keeps the documented registration fields
// and the algorithm lists in step with what the API accepts.
func TestClientSchemaMatchesMetadata(t *testing.T) {
	type prop struct {
		Enum []string `json:"enum"`
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]prop `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		t.Fatal(err)
	}
	meta := doc.Components.Schemas["ClientMetadata"].Properties
	accepted := map[string]bool{"jwks": true} // jwks travels as an object beside Metadata
	ty := reflect.TypeFor[clients.Metadata]()
	for i := range ty.NumField() {
		name, _, _ := strings.Cut(ty.Field(i).Tag.Get("json"), ",")
		if name != "-" && name != "client_id" {
			accepted[name] = true
		}
	}
	for name := range accepted {
		if _, ok := meta[name]; !ok {
			t.Errorf("ClientMetadata schema lacks %s", name)
		}
		if _, ok := doc.Components.Schemas["Client"].Properties[name]; !ok {
			t.Errorf("Client schema lacks %s", name)
		}
	}
	for name := range meta {
		if !accepted[name] {
			t.Errorf("ClientMetadata schema documents %s, which the API does not accept", name)
		}
	}
	if got := meta["token_endpoint_auth_signing_alg"].Enum; !slices.Equal(got, provider.ClientAssertionAlgs) {
		t.Errorf("token_endpoint_auth_signing_alg enum %v, server verifies %v", got, provider.ClientAssertionAlgs)
	}
}
