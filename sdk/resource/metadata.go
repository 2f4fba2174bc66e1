package resource

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/latchhq/latch/sdk/dpop"
)

// wellKnown is RFC 9728's well-known suffix.
const wellKnown = "/.well-known/oauth-protected-resource"

// MetadataPath is where MetadataHandler must be mounted: RFC 9728 §3.1
// inserts the well-known suffix between the resource's host and its path
// (https://api.example/v1 → /.well-known/oauth-protected-resource/v1).
func (v *Verifier) MetadataPath() string {
	u, _ := url.Parse(v.cfg.Resource)
	p := strings.TrimRight(u.EscapedPath(), "/")
	return wellKnown + p
}

// MetadataURL is the absolute URL of the metadata, as challenges cite it.
func (v *Verifier) MetadataURL() string {
	u, _ := url.Parse(v.cfg.Resource)
	return u.Scheme + "://" + u.Host + v.MetadataPath()
}

// MetadataHandler serves the RFC 9728 protected-resource metadata, which
// tells a client (an MCP client, say) which authorization server to use.
func (v *Verifier) MetadataHandler() http.Handler {
	algs := make([]string, len(dpop.Algs))
	for i, a := range dpop.Algs {
		algs[i] = string(a)
	}
	doc := map[string]any{
		"resource":                          v.cfg.Resource,
		"authorization_servers":             []string{v.cfg.Issuer},
		"bearer_methods_supported":          []string{"header"},
		"dpop_signing_alg_values_supported": algs,
		"dpop_bound_access_tokens_required": v.cfg.DPoP.Required,
	}
	if v.cfg.ResourceName != "" {
		doc["resource_name"] = v.cfg.ResourceName
	}
	if len(v.cfg.ScopesSupported) > 0 {
		doc["scopes_supported"] = v.cfg.ScopesSupported
	}
	body, _ := json.Marshal(doc)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		_, _ = w.Write(body)
	})
}
