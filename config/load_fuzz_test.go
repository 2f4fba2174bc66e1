package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzLoad feeds Load a YAML file and one environment variable. It must
// never panic; it either returns a configuration that passes validation
// (and loads again to the same one), or refuses with a file error or a
// list of problems, each naming its key and saying what is wrong. A
// LATCH_CONFIG pointing elsewhere is dropped: it would read other files.
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct{ yaml, key, val string }{
		{string(example), "", ""},
		{"issuer: https://id.example.com\nmaster_key: " + validKey + "\n", "LATCH_HTTP_ADDR", "127.0.0.1:8080"},
		{"database:\n  dsn: postgres://u@h/db\n  client_cache_ttl: 5s\n", "LATCH_DATABASE_CLIENT_CACHE_TTL", "-1s"},
		{"scopes:\n  - name: photos.read\n    description: Read photos\n  - name: openid\n", "LATCH_SCOPES", "photos.write:Write photos,openid"},
		{"http:\n  addr: [1, 2]\n", "LATCH_TOKENS_ACCESS_TOKEN_LIFETIME", "forever"},
		{"unknown_key: 1\nhttp: {adr: x}\n", "LATCH_NOPE", "1"},
		{"issuer: \"\\x00\"\n", "LATCH_ISSUER", "http://user:pass@example.com/#frag"},
		{"tokens:\n  access_token_lifetime: 99999999h\n", "LATCH_MASTER_KEY", "not-base64!"},
		{"- a\n- b\n", "", ""},
		{"a: &a [*a]\n", "", ""},
		{":\n\t-", "LATCH_SCOPES", ":::,,"},
	} {
		f.Add(seed.yaml, seed.key, seed.val)
	}
	// One file per worker process, rewritten per input: inputs run one at
	// a time in a worker, and a directory per input halves the exec rate.
	path := filepath.Join(f.TempDir(), "latch.yaml")
	f.Fuzz(func(t *testing.T, yaml, key, val string) {
		if key == EnvConfigFile || strings.ContainsAny(key, "=\x00") {
			return
		}
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		opts := LoadOptions{File: path}
		if key != "" {
			opts.Environ = []string{key + "=" + val}
		}
		c, err := Load(opts)
		if err != nil {
			var ve *ValidationError
			switch {
			case errors.As(err, &ve):
				if len(ve.Problems) == 0 {
					t.Fatalf("refused with an empty problem list")
				}
				for _, p := range ve.Problems {
					if p.Key == "" || p.Message == "" {
						t.Fatalf("problem without a key or a message: %#v", p)
					}
				}
			case strings.HasPrefix(err.Error(), "config: "):
			default:
				t.Fatalf("unexplained error: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load returned a configuration that does not validate: %v", err)
		}
		again, err := Load(opts)
		if err != nil || !reflect.DeepEqual(c, again) {
			t.Fatalf("loading the same sources twice differed: %v", err)
		}
	})
}
