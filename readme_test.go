package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeSnippetsAreTested: every line of each README code block marked
// "mirrored by FILE" appears in FILE, in order (indentation aside; the test
// may interleave its own lines, such as playing the browser), so the
// snippets users copy are the code the interop tests run.
func TestReadmeSnippetsAreTested(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)<!-- mirrored by (\\S+) -->\n```\\w*\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) < 3 {
		t.Fatalf("found %d mirrored snippets, want the Node, Go and SPA ones", len(blocks))
	}
	for _, b := range blocks {
		file := string(b[1])
		src, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("snippet mirrored by %s: %v", file, err)
			continue
		}
		if missing := notInOrder(normalize(string(src)), normalize(string(b[2]))); missing != "" {
			t.Errorf("README snippet line %q is not in %s (in order)", missing, file)
		}
	}
}

// normalize drops indentation and blank lines.
func normalize(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// notInOrder returns the first line of want not found in have after the
// previous one, or "".
func notInOrder(have, want []string) string {
	i := 0
	for _, w := range want {
		for i < len(have) && have[i] != w {
			i++
		}
		if i == len(have) {
			return w
		}
		i++
	}
	return ""
}
