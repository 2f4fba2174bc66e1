// Command mcp-server is an example MCP server protected by Latch (see
// docs/mcp.md). It publishes RFC 9728 protected-resource metadata naming
// Latch as its authorization server, answers unauthenticated requests with
// a 401 whose WWW-Authenticate points at that metadata, and accepts only
// Latch access tokens issued for its own resource URI (aud, compared
// character for character), checked against Latch's JWKS.
//
//	go run ./examples/mcp-server -issuer http://127.0.0.1:8080 -addr 127.0.0.1:8090
//
// Latch must list the resource: LATCH_RESOURCES="http://127.0.0.1:8090/mcp=Example MCP".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	issuer := flag.String("issuer", "http://127.0.0.1:8080", "Latch's issuer URL")
	resource := flag.String("resource", "", "this server's resource URI (default http://ADDR/mcp); must be one of Latch's resources")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	if *resource == "" {
		*resource = base + "/mcp"
	}
	log.Printf("MCP server for resource %s, authorization server %s", *resource, *issuer)
	fmt.Printf("listening on %s\n", base)
	log.Fatal(http.Serve(ln, Handler(base, *resource, *issuer)))
}

// Handler serves /mcp behind Latch tokens, and the metadata that tells
// clients where to get them.
func Handler(base, resource, issuer string) http.Handler {
	mux := http.NewServeMux()
	meta := auth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
		Resource:               resource,
		AuthorizationServers:   []string{issuer},
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "Latch example MCP server",
	})
	// RFC 9728 §3.1: the metadata of https://host/mcp lives at
	// /.well-known/oauth-protected-resource/mcp; clients that do not read
	// WWW-Authenticate also try the root.
	mux.Handle("/.well-known/oauth-protected-resource/mcp", meta)
	mux.Handle("/.well-known/oauth-protected-resource", meta)

	server := mcp.NewServer(&mcp.Implementation{Name: "latch-example", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "Says who the access token was issued for."}, whoami)
	keys := &keySet{issuer: issuer}
	require := auth.RequireBearerToken(keys.verifier(resource), &auth.RequireBearerTokenOptions{
		ResourceMetadataURL: base + "/.well-known/oauth-protected-resource/mcp",
	})
	mux.Handle("/mcp", require(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)))
	return mux
}

type whoamiIn struct{}

type whoamiOut struct {
	Subject  string   `json:"subject"`
	Audience []string `json:"audience"`
	Scopes   []string `json:"scopes"`
}

func whoami(_ context.Context, req *mcp.CallToolRequest, _ whoamiIn) (*mcp.CallToolResult, whoamiOut, error) {
	ti := req.Extra.TokenInfo
	out := whoamiOut{Subject: ti.UserID, Scopes: ti.Scopes}
	out.Audience, _ = ti.Extra["aud"].([]string)
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hello " + ti.UserID}}}, out, nil
}

// keySet verifies Latch access tokens (RFC 9068 JWTs) with Latch's JWKS,
// fetched from its discovery document and again, at most once a minute,
// when a token names an unknown key.
type keySet struct {
	issuer  string
	mu      sync.Mutex
	keys    jose.JSONWebKeySet
	fetched time.Time
}

var algs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.RS256, jose.PS256, jose.EdDSA}

// verifier checks signature, typ, iss, exp and, what makes this server
// safe to use with a shared authorization server, that aud names this
// resource exactly: a token Latch issued for another resource is refused.
func (k *keySet) verifier(resource string) auth.TokenVerifier {
	return func(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		jws, err := jose.ParseSigned(token, algs)
		if err != nil || len(jws.Signatures) != 1 {
			return nil, fmt.Errorf("%w: not a signed JWT", auth.ErrInvalidToken)
		}
		h := jws.Signatures[0].Protected
		if typ, _ := h.ExtraHeaders["typ"].(string); !strings.EqualFold(typ, "at+jwt") {
			return nil, fmt.Errorf("%w: not an access token (typ %q)", auth.ErrInvalidToken, typ)
		}
		key, err := k.key(ctx, h.KeyID)
		if err != nil {
			return nil, err
		}
		payload, err := jws.Verify(key)
		if err != nil {
			return nil, fmt.Errorf("%w: bad signature", auth.ErrInvalidToken)
		}
		var c struct {
			Iss   string   `json:"iss"`
			Sub   string   `json:"sub"`
			Aud   audience `json:"aud"`
			Exp   int64    `json:"exp"`
			Scope string   `json:"scope"`
		}
		if err := json.Unmarshal(payload, &c); err != nil {
			return nil, fmt.Errorf("%w: bad claims", auth.ErrInvalidToken)
		}
		switch {
		case c.Iss != k.issuer:
			return nil, fmt.Errorf("%w: issued by %q", auth.ErrInvalidToken, c.Iss)
		case !slices.Contains(c.Aud, resource):
			return nil, fmt.Errorf("%w: not issued for this resource", auth.ErrInvalidToken)
		case time.Unix(c.Exp, 0).Before(time.Now()):
			return nil, fmt.Errorf("%w: expired", auth.ErrInvalidToken)
		}
		return &auth.TokenInfo{Scopes: strings.Fields(c.Scope), Expiration: time.Unix(c.Exp, 0), UserID: c.Sub,
			Extra: map[string]any{"aud": []string(c.Aud)}}, nil
	}
}

// audience reads aud as a string or a list.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = []string{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

func (k *keySet) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if found := k.keys.Key(kid); len(found) > 0 {
		return &found[0], nil
	}
	if time.Since(k.fetched) < time.Minute {
		return nil, fmt.Errorf("%w: unknown key", auth.ErrInvalidToken)
	}
	k.fetched = time.Now()
	if err := k.fetch(ctx); err != nil {
		return nil, err
	}
	if found := k.keys.Key(kid); len(found) > 0 {
		return &found[0], nil
	}
	return nil, fmt.Errorf("%w: unknown key", auth.ErrInvalidToken)
}

func (k *keySet) fetch(ctx context.Context) error {
	var disc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, k.issuer+"/.well-known/oauth-authorization-server", &disc); err != nil {
		return err
	}
	return getJSON(ctx, disc.JWKSURI, &k.keys)
}

func getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch %s: %w", u, errors.New(resp.Status))
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}
