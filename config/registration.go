package config

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// EnvResources sets resource servers as "uri=name;uri=name". Like
// LATCH_SCOPES it has no single config key: it adds to the file's list.
const EnvResources = "LATCH_RESOURCES"

// Registration modes (SPEC §6).
const (
	RegistrationOff   = "off"
	RegistrationOpen  = "open"
	RegistrationToken = "token"
)

// Resource is a resource server (RFC 8707): its URI, compared character
// for character, the name a consent screen shows, and optionally the only
// scopes a request for it may ask for (besides OpenID Connect's own).
type Resource struct {
	URI    string   `koanf:"uri"`
	Name   string   `koanf:"name"`
	Scopes []string `koanf:"scopes"`
}

// CIMDConfig is the policy for Client ID Metadata Documents.
type CIMDConfig struct {
	// AllowedHosts, when set, are the only hosts whose documents are
	// accepted (comma-separated; "*.example.com" matches subdomains).
	AllowedHosts string `koanf:"allowed_hosts"`
	// DeniedHosts are never fetched (same syntax); they win over
	// AllowedHosts.
	DeniedHosts string `koanf:"denied_hosts"`
	// MinCache and MaxCache bound how long a fetched document is used,
	// whatever its caching headers say.
	MinCache time.Duration `koanf:"min_cache"`
	MaxCache time.Duration `koanf:"max_cache"`
	// NegativeCache is how long a failed fetch or refused document is
	// remembered, so a bad client id cannot make Latch fetch on every
	// request.
	NegativeCache time.Duration `koanf:"negative_cache"`
}

// DynamicClientsConfig governs dynamically registered clients.
type DynamicClientsConfig struct {
	// IdleLifetime deletes a dynamically registered client that has not
	// obtained a token this long after registering; 0 keeps them.
	IdleLifetime time.Duration `koanf:"idle_lifetime"`
}

// CIMDEnabled reports whether https client ids are accepted.
func (c *Config) CIMDEnabled() bool { return c.ClientMetadataDocuments == "on" }

// HostList splits a comma- or space-separated host list.
func HostList(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == ',' || r == ' ' })
}

func (c *Config) validateRegistration(ps *problems) {
	oneOf(ps, "registration", c.Registration, RegistrationOff, RegistrationOpen, RegistrationToken)
	oneOf(ps, "client_metadata_documents", c.ClientMetadataDocuments, "on", "off")
	if c.CIMD.MinCache < 0 || c.CIMD.MaxCache < c.CIMD.MinCache {
		ps.add("cimd.max_cache", "must be at least cimd.min_cache (%s), got %s", c.CIMD.MinCache, c.CIMD.MaxCache)
	}
	if c.CIMD.NegativeCache < 0 {
		ps.add("cimd.negative_cache", "must not be negative, got %s", c.CIMD.NegativeCache)
	}
	if c.DynamicClients.IdleLifetime < 0 {
		ps.add("dynamic_clients.idle_lifetime", "must be 0 (keep) or more, got %s", c.DynamicClients.IdleLifetime)
	}
	scopeNames := make([]string, 0, len(c.Scopes))
	for _, s := range c.Scopes {
		scopeNames = append(scopeNames, s.Name)
	}
	validateResources(ps, func(i int) string { return fmt.Sprintf("resources[%d]", i) }, c.Resources, scopeNames)
	if c.DefaultResource != "" && !slices.ContainsFunc(c.Resources, func(r Resource) bool { return r.URI == c.DefaultResource }) {
		ps.add("default_resource", "%q is not one of the configured resources", c.DefaultResource)
	}
}

// validateResources checks URIs (absolute, no fragment, RFC 8707 §2),
// duplicates and scopes, and returns the acceptable entries.
func validateResources(ps *problems, keyOf func(i int) string, list []Resource, scopeNames []string) []Resource {
	seen := map[string]bool{}
	valid := list[:0:0]
	for i, r := range list {
		u, err := url.Parse(r.URI)
		switch {
		case r.URI == "":
			ps.add(keyOf(i), "resource uri must not be empty")
			continue
		case err != nil || !u.IsAbs() || u.Host == "" && u.Opaque == "":
			ps.add(keyOf(i), "resource %q must be an absolute URI", r.URI)
			continue
		case strings.Contains(r.URI, "#"):
			ps.add(keyOf(i), "resource %q must not contain a fragment (RFC 8707 §2)", r.URI)
			continue
		case seen[r.URI]:
			ps.add(keyOf(i), "duplicate resource %q", r.URI)
			continue
		}
		for _, sc := range r.Scopes {
			if len(scopeNames) > 0 && !slices.Contains(scopeNames, sc) {
				ps.add(keyOf(i)+".scopes", "unknown scope %q (add it to scopes first)", sc)
			}
		}
		seen[r.URI] = true
		valid = append(valid, r)
	}
	return valid
}

// decodeFileResources converts the YAML resources list.
func decodeFileResources(ps *problems, raw any) []Resource {
	if raw == nil {
		return nil
	}
	list, ok := raw.([]any)
	if !ok {
		ps.add("resources", "must be a list of {uri, name, scopes}, got %s", yamlKind(raw))
		return nil
	}
	var out []Resource
	for i, item := range list {
		key := fmt.Sprintf("resources[%d]", i)
		m, ok := item.(map[string]any)
		if !ok {
			ps.add(key, "must be a mapping with uri, name and scopes, got %s", yamlKind(item))
			continue
		}
		var r Resource
		bad := false
		for _, name := range slices.Sorted(maps.Keys(m)) {
			switch v := m[name].(type) {
			case string:
				switch name {
				case "uri":
					r.URI = v
				case "name":
					r.Name = v
				default:
					bad = unknownResourceKey(ps, key, name)
				}
			case []any:
				if name != "scopes" {
					bad = unknownResourceKey(ps, key, name)
					continue
				}
				for _, sc := range v {
					s, ok := sc.(string)
					if !ok {
						ps.add(key+".scopes", "must be a list of scope names")
						bad = true
						continue
					}
					r.Scopes = append(r.Scopes, s)
				}
			case nil:
			default:
				ps.add(key+"."+name, "has the wrong type: %s", yamlKind(v))
				bad = true
			}
		}
		if !bad {
			out = append(out, r)
		}
	}
	return out
}

func unknownResourceKey(ps *problems, key, name string) bool {
	msg := "unknown key or wrong type"
	if sg := suggest(name, []string{"name", "scopes", "uri"}); sg != "" {
		msg += fmt.Sprintf("; did you mean %q?", sg)
	}
	ps.add(key+"."+name, "%s", msg)
	return true
}

// parseEnvResources parses LATCH_RESOURCES ("uri=name;uri=name"); the name
// is optional.
func parseEnvResources(val string) []Resource {
	var out []Resource
	for seg := range strings.SplitSeq(val, ";") {
		seg = strings.TrimSpace(seg)
		if seg == "" {
			continue
		}
		uri, name, _ := strings.Cut(seg, "=")
		out = append(out, Resource{URI: strings.TrimSpace(uri), Name: strings.TrimSpace(name)})
	}
	return out
}
