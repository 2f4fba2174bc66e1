// Package mcp_test runs the official MCP TypeScript SDK client against the
// example MCP server (examples/mcp-server) protected by Latch: discovery
// from the 401, a Client ID Metadata Document served over https on
// loopback, dynamic registration, resource indicators, PKCE with the
// approval API playing the user, and audience checks at the MCP server.
package mcp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/latchtest"
)

const otherResource = "https://other.example.com/api"

// needNode skips without node and the SDK outside CI; under CI they must
// be there (.ci/run installs them with npm ci).
func needNode(t *testing.T) string {
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat("node_modules/@modelcontextprotocol/sdk/package.json")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node and e2e/mcp/node_modules are required under CI (npm ci in e2e/mcp): %v", err)
		}
		t.Skipf("needs node and `npm ci` in e2e/mcp: %v", err)
	}
	return node
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type run struct {
	Authorize  map[string]string `json:"authorize"`
	Session    map[string]any    `json:"session"`
	Registered bool              `json:"registered"`
	ClientID   string            `json:"client_id"`
	Token      string            `json:"access_token"`
	Tools      []string          `json:"tools"`
	Result     struct {
		Subject  string   `json:"subject"`
		Audience []string `json:"audience"`
	} `json:"result"`
	Text string `json:"text"`
}

func TestMCPTypeScriptSDK(t *testing.T) {
	node := needNode(t)

	// The client's metadata document, over https on loopback with a
	// throwaway CA that Latch trusts through SSL_CERT_FILE (SPEC §7).
	redirect := "http://127.0.0.1:45871/callback"
	var docURL string
	docs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/mcp-client.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"client_id": docURL, "client_name": "Latch e2e MCP client", "redirect_uris": []string{"http://127.0.0.1/callback"},
			"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
			"token_endpoint_auth_method": "none",
		})
	}))
	defer docs.Close()
	docURL = docs.URL + "/mcp-client.json"
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: docs.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", ca)

	mcpAddr := freeAddr(t)
	resource := "http://" + mcpAddr + "/mcp"
	env := latchtest.Start(t, latchtest.Options{Configure: func(c *config.Config) {
		c.Resources = []config.Resource{{URI: resource, Name: "Example MCP"}, {URI: otherResource, Name: "Another API"}}
		c.Outbound.AllowLoopback = true
		c.Registration = config.RegistrationOpen
	}})

	// The example MCP server, as its own process.
	bin := filepath.Join(t.TempDir(), "mcp-server")
	build := exec.Command("go", "build", "-o", bin, "./examples/mcp-server")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build example: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := exec.CommandContext(ctx, bin, "-addr", mcpAddr, "-issuer", env.URL)
	stdout, _ := srv.StdoutPipe()
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		srv.Wait()
	}()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "listening on ") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("the example MCP server did not start")
	}

	client := func(t *testing.T, mode string) run {
		cmd := exec.CommandContext(ctx, node, "client.mjs")
		cmd.Env = append(os.Environ(), "MCP_URL="+resource, "LATCH_URL="+env.URL, "LATCH_API_KEY="+latchtest.APIKey,
			"MODE="+mode, "REDIRECT_URL="+redirect, "CLIENT_METADATA_URL="+docURL)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("MCP client (%s): %v\n%s", mode, err, out)
		}
		var r run
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("MCP client output %q: %v", out, err)
		}
		if r.Authorize["resource"] != resource || r.Authorize["code_challenge_method"] != "S256" {
			t.Errorf("authorization request %v: want resource %s and S256", r.Authorize, resource)
		}
		if res, _ := r.Session["resources"].([]any); !slices.Contains(res, any(resource)) {
			t.Errorf("consent data resources %v", r.Session["resources"])
		}
		if !slices.Contains(r.Tools, "whoami") || r.Result.Subject != "mcp-user-1" || !slices.Equal(r.Result.Audience, []string{resource}) {
			t.Errorf("tool call: %+v", r)
		}
		return r
	}

	t.Run("ClientIDMetadataDocument", func(t *testing.T) {
		r := client(t, "cimd")
		cl, _ := r.Session["client"].(map[string]any)
		if r.Registered || r.ClientID != docURL || r.Authorize["client_id"] != docURL || cl["client_id_document"] != true {
			t.Errorf("client identity: registered %v, client_id %q, session client %v", r.Registered, r.ClientID, cl)
		}
	})
	t.Run("DynamicRegistration", func(t *testing.T) {
		r := client(t, "dcr")
		if !r.Registered || r.ClientID == "" || strings.Contains(r.ClientID, "://") {
			t.Errorf("client identity: registered %v, client_id %q", r.Registered, r.ClientID)
		}
	})
	t.Run("TokenForAnotherResourceRefused", func(t *testing.T) {
		m := env.RegisterClient(map[string]any{"client_name": "Machine", "grant_types": []string{"client_credentials"}, "response_types": []string{}, "scope": "email"})
		req, _ := http.NewRequest("POST", env.URL+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "resource": {otherResource}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(m.ID, m.Secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var tok map[string]any
		json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		other, _ := tok["access_token"].(string)
		if other == "" {
			t.Fatalf("token for the other resource: %v", tok)
		}
		for name, bearer := range map[string]string{"another resource's token": other, "no token": ""} {
			body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
			req, _ := http.NewRequest("POST", resource, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if bearer != "" {
				req.Header.Set("Authorization", "Bearer "+bearer)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `resource_metadata="http://`+mcpAddr+`/.well-known/oauth-protected-resource/mcp"`) {
				t.Errorf("%s: %d %q", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}
	})
}
