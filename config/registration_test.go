package config

import (
	"strings"
	"testing"
)

func TestResourcesFromFileAndEnv(t *testing.T) {
	file := writeYAML(t, `
scopes:
  - name: calendar.read
    description: Read your calendar
resources:
  - uri: https://api.example.com/v1?x=a;b
    name: API with ; in its URI
    scopes: [calendar.read]
default_resource: https://mcp.example.com/mcp
`)
	c := mustLoad(t, LoadOptions{File: file, Environ: []string{"LATCH_RESOURCES=https://mcp.example.com/mcp=Example MCP;https://other.example.com"}})
	want := []Resource{
		{URI: "https://api.example.com/v1?x=a;b", Name: "API with ; in its URI", Scopes: []string{"calendar.read"}},
		{URI: "https://mcp.example.com/mcp", Name: "Example MCP"},
		{URI: "https://other.example.com"},
	}
	if len(c.Resources) != len(want) {
		t.Fatalf("resources %+v", c.Resources)
	}
	for i := range want {
		if c.Resources[i].URI != want[i].URI || c.Resources[i].Name != want[i].Name || strings.Join(c.Resources[i].Scopes, " ") != strings.Join(want[i].Scopes, " ") {
			t.Fatalf("resource %d: %+v, want %+v", i, c.Resources[i], want[i])
		}
	}
}

func TestResourceAndRegistrationProblems(t *testing.T) {
	_, err := Load(LoadOptions{Environ: []string{
		"LATCH_RESOURCES=relative/path=x;https://a.example.com/#frag=y;https://b.example.com=b;https://b.example.com=again",
		"LATCH_DEFAULT_RESOURCE=https://nowhere.example.com",
		"LATCH_REGISTRATION=maybe",
		"LATCH_CLIENT_METADATA_DOCUMENTS=yes",
	}})
	if err == nil {
		t.Fatal("bad resources and modes accepted")
	}
	for _, want := range []string{"must be an absolute URI", "fragment", "duplicate resource", "default_resource", "registration", "client_metadata_documents"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems %q lack %q", err, want)
		}
	}
}
