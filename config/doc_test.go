package config

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the config struct, its defaults and config.example.yaml")

const (
	configDocPath = "../docs/configuration.md"
	examplePath   = "../config.example.yaml"
	regenerate    = "go generate ./config   (or: go test ./config -run TestConfigurationDoc -update)"
)

// TestConfigurationDoc keeps docs/configuration.md equal to what the code
// says: one row per option of Config, with its variable and default taken
// from the struct and defaults(), and its description from the comment
// above it in config.example.yaml. An option added without a comment there,
// or without regenerating the page, fails here.
func TestConfigurationDoc(t *testing.T) {
	example, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	comments := exampleComments(example)
	var missing []string
	for _, l := range leaves {
		if strings.TrimSpace(describe(comments[l.key], "")) == "" {
			missing = append(missing, l.key)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("config.example.yaml has no description above %s: write one comment line or more above each, then run\n  %s",
			strings.Join(missing, ", "), regenerate)
	}
	got := renderConfigDoc(comments)
	if *update {
		if err := os.WriteFile(configDocPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(configDocPath)
	if err != nil {
		t.Fatalf("%v; run\n  %s", err, regenerate)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/configuration.md is out of date with the config struct or config.example.yaml (%s); run\n  %s\nand commit the result",
			firstDiff(want, got), regenerate)
	}
}

// exampleComments maps each dotted key of config.example.yaml to the
// comment lines directly above it (no blank line between).
func exampleComments(src []byte) map[string][]string {
	out := map[string][]string{}
	var (
		block   []string
		section string
	)
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			block = nil
		case strings.HasPrefix(trimmed, "#"):
			block = append(block, strings.TrimSpace(strings.TrimPrefix(trimmed, "#")))
		default:
			name, _, ok := strings.Cut(trimmed, ":")
			if !ok || strings.HasPrefix(trimmed, "-") {
				block = nil
				continue
			}
			key := name
			if line[0] == ' ' {
				key = section + "." + name
			} else {
				section = name
			}
			out[key] = block
			block = nil
		}
	}
	return out
}

// describe joins comment lines into one paragraph, dropping the Env: and
// Flag: lines (the table has its own columns for them) and a Default: line
// that only repeats the default shown.
func describe(lines []string, shownDefault string) string {
	var parts []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "Env:"), strings.HasPrefix(l, "Flag:"):
			continue
		case strings.HasPrefix(l, "Default:"):
			v := strings.TrimSpace(strings.TrimPrefix(l, "Default:"))
			if v == shownDefault || v == `""` || v == "`"+shownDefault+"`" {
				continue
			}
		}
		parts = append(parts, l)
	}
	return strings.Join(parts, " ")
}

func renderConfigDoc(comments map[string][]string) []byte {
	var b bytes.Buffer
	b.WriteString(`# Configuration reference

<!-- Generated from config/config.go, its defaults and the comments in
config.example.yaml by TestConfigurationDoc. Do not edit by hand: change
those, then run ` + "`" + `go generate ./config` + "`" + `. -->

Every option can be set in the YAML file (` + "`--config PATH`" + ` or ` + "`LATCH_CONFIG`" + `), by
its environment variable, and for a few by a flag. Later sources win:

    built-in defaults < config file < LATCH_* environment variables < flags

Durations are Go duration strings (` + "`90s`, `10m`, `24h`" + `). An environment
variable set to the empty string counts as not set. Unknown keys in the file
and unknown ` + "`LATCH_*`" + ` variables are errors, and every problem is reported at
once. [config.example.yaml](../config.example.yaml) is a commented file with
every default.

`)
	b.WriteString("## Variables that are not options\n\n| variable | meaning |\n|---|---|\n")
	fmt.Fprintf(&b, "| `%s` | path of the YAML config file (flag `--%s`) |\n", EnvConfigFile, FlagConfig)
	fmt.Fprintf(&b, "| `%s` | adds scopes, `name=description;name=description` (see `scopes` below) |\n", EnvScopes)
	fmt.Fprintf(&b, "| `%s` | the new master key, read only by `latch keys rewrap` |\n", EnvNewMasterKey)
	b.WriteString("| `LATCH_SERVICE_HOST`, `LATCH_SERVICE_PORT*`, `LATCH_PORT*` | injected by Kubernetes for a Service named `latch`; ignored |\n\n")

	flags := map[string]string{}
	for f, key := range flagKeys {
		flags[key] = "--" + f
	}
	section := "-"
	for _, l := range leaves {
		sec, _, nested := strings.Cut(l.key, ".")
		if !nested {
			sec = ""
		}
		if sec != section {
			section = sec
			title := "Top-level options"
			if sec != "" {
				title = "`" + sec + "`"
				if c := describe(comments[sec], ""); c != "" {
					title += "\n\n" + c
				}
			}
			if !bytes.HasSuffix(b.Bytes(), []byte("\n\n")) {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "## %s\n\n| option | variable | default | meaning |\n|---|---|---|---|\n", title)
			if sec == "" {
				fmt.Fprintf(&b, "| `scopes` | `%s` | `openid`, `profile`, `email`, `offline_access` | %s |\n",
					EnvScopes, cell(describe(comments["scopes"], "")))
			}
		}
		def := formatDefault(reflect.ValueOf(defaults()).Elem().FieldByIndex(l.index))
		vars := "`" + l.env + "`"
		if f, ok := flags[l.key]; ok {
			vars += ", `" + f + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", l.key, vars, def, cell(describe(comments[l.key], strings.Trim(def, "`"))))
	}
	return b.Bytes()
}

// formatDefault renders a default as it would be written in the file.
func formatDefault(v reflect.Value) string {
	if v.Type() == durationType {
		return "`" + shortDuration(time.Duration(v.Int())) + "`"
	}
	switch v.Kind() {
	case reflect.String:
		if v.String() == "" {
			return "(empty)"
		}
		return "`" + v.String() + "`"
	default:
		return fmt.Sprintf("`%v`", v.Interface())
	}
}

// shortDuration drops the zero units time.Duration.String adds: 1h0m0s → 1h.
func shortDuration(d time.Duration) string {
	s := d.String()
	if s == "0s" {
		return s
	}
	for _, suffix := range []string{"0s", "0m"} {
		if strings.HasSuffix(s, "m"+suffix) || strings.HasSuffix(s, "h"+suffix) {
			s = strings.TrimSuffix(s, suffix)
		}
	}
	return s
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("first difference at line %d: file has %q, code says %q", i+1, x, y)
		}
	}
	return "they differ"
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", time.Hour: "1h", 90 * time.Second: "1m30s", 10 * time.Minute: "10m",
		2160 * time.Hour: "2160h", 2 * time.Second: "2s", time.Hour + time.Second: "1h0m1s",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
