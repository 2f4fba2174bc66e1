package config

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// Environment variables that are not config keys.
const (
	envPrefix = "LATCH_"
	// EnvConfigFile names the YAML file to load.
	EnvConfigFile = "LATCH_CONFIG"
	// EnvScopes adds scopes as "name=description;name=description". It has
	// its own format because a list of pairs does not fit one env value.
	EnvScopes = "LATCH_SCOPES"
	// EnvNewMasterKey is read only by `latch keys rewrap`.
	EnvNewMasterKey = "LATCH_NEW_MASTER_KEY"
)

// Flag names registered by BindFlags.
const (
	FlagConfig      = "config"
	FlagHTTPAddr    = "http-addr"
	FlagIssuer      = "issuer"
	FlagDatabaseDSN = "database-dsn"
	FlagApprovalURL = "approval-url"
)

// flagKeys maps each config-overriding flag to its key. Only the settings an
// operator commonly changes per invocation get flags; everything else is
// reachable through the file or the environment.
var flagKeys = map[string]string{
	FlagHTTPAddr:    "http.addr",
	FlagIssuer:      "issuer",
	FlagDatabaseDSN: "database.dsn",
	FlagApprovalURL: "approval.url",
}

// BindFlags registers Latch's configuration flags on fs. Load applies only
// flags the user actually set, so the defaults shown in help never override
// the file or the environment.
func BindFlags(fs *pflag.FlagSet) {
	fs.String(FlagConfig, "", "path of the YAML config file (overrides $"+EnvConfigFile+")")
	fs.String(FlagHTTPAddr, defaultAddr, "listen address host:port (overrides $LATCH_HTTP_ADDR)")
	fs.String(FlagIssuer, "", "public issuer URL (default http://<http-addr>; overrides $LATCH_ISSUER)")
	fs.String(FlagDatabaseDSN, defaultDSN, "sqlite://PATH or postgres://... (overrides $LATCH_DATABASE_DSN)")
	fs.String(FlagApprovalURL, "", "external approval page URL; empty uses the built-in page (overrides $LATCH_APPROVAL_URL)")
}

// LoadOptions are the inputs to Load. They are explicit, rather than read
// from the process, so tests and embedders control every source.
type LoadOptions struct {
	// Environ holds KEY=value pairs as returned by os.Environ; nil means
	// no environment.
	Environ []string
	// Flags is a flag set on which BindFlags was called; it may be nil.
	Flags *pflag.FlagSet
	// File is the YAML file to read. When empty, the --config flag and
	// then LATCH_CONFIG are consulted; with none of them no file is read.
	File string
}

// Load builds the configuration from defaults, the YAML file, the
// environment and flags (each overriding the previous) and validates it.
//
// A file that cannot be read or parsed is returned as an error immediately,
// since validating without it would only produce misleading problems.
// Everything else (unknown keys, unknown LATCH_* variables, malformed
// values, failed validation) is collected into one *ValidationError.
func Load(opts LoadOptions) (*Config, error) {
	var (
		ps      problems
		k       = koanf.New(".")
		sources = map[string]string{} // key -> where it was set, for messages
		cfg     = defaults()
	)

	var fileScopes, fileResources any
	if path := configPath(opts); path != "" {
		fk := koanf.New(".")
		if err := fk.Load(file.Provider(path), yaml.Parser()); err != nil {
			return nil, fmt.Errorf("config: loading config file %q: %w", path, err)
		}
		raw := fk.Raw()
		checkKeys(&ps, raw, reflect.TypeFor[Config](), "")
		fileScopes = raw["scopes"]
		fileResources = raw["resources"]
		if err := k.Merge(fk); err != nil {
			return nil, fmt.Errorf("config: merging config file %q: %w", path, err)
		}
	}

	var envScopes, envResources string
	envProvider := env.Provider(".", env.Opt{
		Prefix:      envPrefix,
		EnvironFunc: func() []string { return opts.Environ },
		TransformFunc: func(name, val string) (string, any) {
			switch name {
			case EnvConfigFile, EnvNewMasterKey:
				return "", nil
			case EnvScopes:
				envScopes = val
				return "", nil
			case EnvResources:
				envResources = val
				return "", nil
			}
			if isOrchestratorVar(name) {
				return "", nil
			}
			l, ok := leafByEnv[name]
			if !ok {
				msg := "unknown environment variable " + name
				if s := suggest(name, envNames); s != "" {
					msg += "; did you mean " + s + "?"
				}
				ps.add(name, "%s", msg)
				return "", nil
			}
			// Orchestrators often pass unset variables as empty strings;
			// treating those as "not set" keeps the file and defaults.
			if val == "" {
				return "", nil
			}
			sources[l.key] = name
			return l.key, val
		},
	})
	if err := k.Load(envProvider, nil); err != nil {
		return nil, fmt.Errorf("config: reading environment: %w", err)
	}

	if opts.Flags != nil {
		flagProvider := posflag.ProviderWithFlag(opts.Flags, ".", k, func(f *pflag.Flag) (string, any) {
			key, ok := flagKeys[f.Name]
			if !ok || !f.Changed {
				return "", nil
			}
			sources[key] = "--" + f.Name
			return key, f.Value.String()
		})
		if err := k.Load(flagProvider, nil); err != nil {
			return nil, fmt.Errorf("config: reading flags: %w", err)
		}
	}

	root := reflect.ValueOf(cfg).Elem()
	for _, l := range leaves {
		if !k.Exists(l.key) {
			continue
		}
		raw := k.Get(l.key)
		if raw == nil {
			continue // "key:" with no value in YAML leaves the default
		}
		if msg := decodeLeaf(root.FieldByIndex(l.index), raw, l.secret); msg != "" {
			ps.add(l.key, "%s", msg)
		}
	}

	cfg.Scopes = mergeScopes(cfg.Scopes, decodeFileScopes(&ps, fileScopes))
	cfg.Scopes = mergeScopes(cfg.Scopes, parseEnvScopes(&ps, envScopes))
	cfg.Resources = append(decodeFileResources(&ps, fileResources), parseEnvResources(envResources)...)

	if cfg.Issuer == "" {
		cfg.Issuer = defaultIssuer(cfg.HTTP.Addr)
	}

	cfg.validate(&ps)
	for i := range ps {
		if src, ok := sources[ps[i].Key]; ok {
			ps[i].Message += " (set by " + src + ")"
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// configPath picks the YAML file: an explicit option first, then the flag,
// then the environment.
func configPath(opts LoadOptions) string {
	if opts.File != "" {
		return opts.File
	}
	if opts.Flags != nil {
		if f := opts.Flags.Lookup(FlagConfig); f != nil && f.Changed {
			return f.Value.String()
		}
	}
	for _, kv := range opts.Environ {
		if name, val, ok := strings.Cut(kv, "="); ok && name == EnvConfigFile {
			return val
		}
	}
	return ""
}

// leaf is one settable value of Config.
type leaf struct {
	key    string // dotted koanf path
	env    string // LATCH_ variable
	index  []int  // reflect field index path from Config
	secret bool
}

var (
	leaves    []leaf
	leafByEnv = map[string]leaf{}
	envNames  []string // every recognised LATCH_ variable, for suggestions
)

var durationType = reflect.TypeFor[time.Duration]()

func init() {
	walkLeaves(reflect.TypeFor[Config](), "", nil)
	for _, l := range leaves {
		if _, dup := leafByEnv[l.env]; dup {
			// Two keys mapping to one variable would make one unreachable.
			panic("config: environment variable " + l.env + " maps to two keys")
		}
		leafByEnv[l.env] = l
		envNames = append(envNames, l.env)
	}
	envNames = append(envNames, EnvConfigFile, EnvScopes, EnvResources)
}

// walkLeaves derives keys and variable names from the koanf tags, so the
// env mapping cannot drift from the struct and keys containing underscores
// (read_timeout) are never split ambiguously.
func walkLeaves(t reflect.Type, prefix string, index []int) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("koanf")
		if tag == "" || !f.IsExported() {
			continue
		}
		key := prefix + tag
		idx := append(slices.Clip(index), i)
		switch {
		case f.Type.Kind() == reflect.Struct:
			walkLeaves(f.Type, key+".", idx)
		case f.Type.Kind() == reflect.Slice:
			// Scopes and resources: merged specially and set through
			// LATCH_SCOPES and LATCH_RESOURCES.
		default:
			env := f.Tag.Get("env") // a name deployments already use
			if env == "" {
				env = envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
			}
			leaves = append(leaves, leaf{
				key:    key,
				env:    env,
				index:  idx,
				secret: f.Tag.Get("secret") == "true",
			})
		}
	}
}

// fieldsByTag returns the koanf-tagged fields of a struct type by tag.
func fieldsByTag(t reflect.Type) map[string]reflect.StructField {
	m := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if tag := f.Tag.Get("koanf"); tag != "" && f.IsExported() {
			m[tag] = f
		}
	}
	return m
}

// checkKeys reports keys in the YAML map that Config does not have, at any
// depth, so misspelt settings fail loudly instead of being ignored.
func checkKeys(ps *problems, raw map[string]any, t reflect.Type, prefix string) {
	fields := fieldsByTag(t)
	names := slices.Sorted(maps.Keys(fields))
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		key := prefix + name
		f, ok := fields[name]
		if !ok {
			msg := "unknown key"
			if s := suggest(name, names); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", prefix+s)
			}
			ps.add(key, "%s", msg)
			continue
		}
		if f.Type.Kind() != reflect.Struct {
			continue
		}
		switch sub := raw[name].(type) {
		case nil:
		case map[string]any:
			checkKeys(ps, sub, f.Type, key+".")
		default:
			ps.add(key, "must be a mapping, got %s", yamlKind(sub))
		}
	}
}

// decodeLeaf stores raw into dst, returning a problem message or "". It is
// hand-written rather than mapstructure so that messages for secret fields
// never contain the value and bare YAML numbers are not taken as
// nanosecond durations.
func decodeLeaf(dst reflect.Value, raw any, secret bool) string {
	switch {
	case dst.Type() == durationType:
		s, ok := raw.(string)
		if !ok {
			return fmt.Sprintf("must be a duration string such as \"10m\" or \"90s\", got %s", yamlKind(raw))
		}
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Sprintf("%q is not a duration; use a form such as \"10m\" or \"90s\"", s)
		}
		dst.SetInt(int64(d))
	case dst.Kind() == reflect.String:
		s, ok := raw.(string)
		if !ok {
			return "must be a string, got " + yamlKind(raw)
		}
		dst.SetString(s)
	case dst.Kind() == reflect.Bool:
		switch v := raw.(type) {
		case bool:
			dst.SetBool(v)
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return fmt.Sprintf("%q is not a boolean; use true or false", v)
			}
			dst.SetBool(b)
		default:
			return "must be a boolean, got " + yamlKind(raw)
		}
	case dst.Kind() == reflect.Int || dst.Kind() == reflect.Int64:
		n, ok := toInt(raw)
		if !ok || dst.OverflowInt(n) {
			if s, isStr := raw.(string); isStr && !secret {
				return fmt.Sprintf("%q is not an integer", s)
			}
			return "must be an integer, got " + yamlKind(raw)
		}
		dst.SetInt(n)
	default:
		// Only reachable if Config gains a field kind this switch lacks.
		return fmt.Sprintf("unsupported field type %s", dst.Type())
	}
	return ""
}

func toInt(raw any) (int64, bool) {
	switch v := raw.(type) {
	case int:
		return int64(v), true
	case int64:
		return v, true
	case uint64:
		if v > math.MaxInt64 {
			return 0, false
		}
		return int64(v), true
	case float64:
		if v != math.Trunc(v) || v < math.MinInt64 || v >= math.MaxInt64 {
			return 0, false
		}
		return int64(v), true
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// yamlKind describes a value's YAML type without revealing its content.
func yamlKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, uint64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a mapping"
	case time.Time:
		return "a timestamp"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// decodeFileScopes converts the YAML scopes list, reporting bad entries.
func decodeFileScopes(ps *problems, raw any) []Scope {
	if raw == nil {
		return nil
	}
	list, ok := raw.([]any)
	if !ok {
		ps.add("scopes", "must be a list of {name, description}, got %s", yamlKind(raw))
		return nil
	}
	var out []Scope
	var keys []string // parallel to out, for messages
	for i, item := range list {
		key := fmt.Sprintf("scopes[%d]", i)
		m, ok := item.(map[string]any)
		if !ok {
			ps.add(key, "must be a mapping with name and description, got %s", yamlKind(item))
			continue
		}
		var s Scope
		bad := false
		for _, name := range slices.Sorted(maps.Keys(m)) {
			var dst *string
			switch name {
			case "name":
				dst = &s.Name
			case "description":
				dst = &s.Description
			default:
				msg := "unknown key"
				if sg := suggest(name, []string{"description", "name"}); sg != "" {
					msg += fmt.Sprintf("; did you mean %q?", sg)
				}
				ps.add(key+"."+name, "%s", msg)
				bad = true
				continue
			}
			switch v := m[name].(type) {
			case nil:
			case string:
				*dst = v
			default:
				ps.add(key+"."+name, "must be a string, got %s", yamlKind(v))
				bad = true
			}
		}
		if !bad {
			out = append(out, s)
			keys = append(keys, key+".name")
		}
	}
	return validateScopes(ps, func(i int) string { return keys[i] }, out)
}

// parseEnvScopes parses LATCH_SCOPES ("name=description;..."). Empty
// segments are skipped so a trailing ";" is harmless.
func parseEnvScopes(ps *problems, val string) []Scope {
	var out []Scope
	for seg := range strings.SplitSeq(val, ";") {
		seg = strings.TrimSpace(seg)
		if seg == "" {
			continue
		}
		name, desc, _ := strings.Cut(seg, "=")
		out = append(out, Scope{Name: strings.TrimSpace(name), Description: strings.TrimSpace(desc)})
	}
	return validateScopes(ps, func(i int) string { return fmt.Sprintf("%s[%d]", EnvScopes, i) }, out)
}

// mergeScopes adds extra to base; an entry whose name already exists
// replaces that entry's description in place, so built-in scopes keep their
// position but can be reworded. An empty description never replaces one.
func mergeScopes(base, extra []Scope) []Scope {
	for _, s := range extra {
		i := slices.IndexFunc(base, func(b Scope) bool { return b.Name == s.Name })
		if i >= 0 {
			if s.Description != "" {
				base[i].Description = s.Description
			}
			continue
		}
		base = append(base, s)
	}
	return base
}

// suggest returns the candidate closest to s when it is close enough to be
// a plausible typo, or "".
func suggest(s string, candidates []string) string {
	best, bestDist := "", 3 // accept at most two edits
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
