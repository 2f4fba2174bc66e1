package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile(`(?m)^#{1,6} +(.+)$`)
	slugDrop  = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
)

// docFiles are the documents a newcomer reads: they must stand alone.
func docFiles(t *testing.T) []string {
	files := []string{"README.md", "CHANGELOG.md", "SECURITY.md"}
	more, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append(files, more...)
}

// TestEveryDocLinkedFromREADME keeps the README the one entry point: a new
// document under docs/ must be listed there.
func TestEveryDocLinkedFromREADME(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range docFiles(t) {
		if f != "README.md" && !strings.Contains(string(readme), "]("+filepath.ToSlash(f)+")") {
			t.Errorf("README.md does not link %s", f)
		}
	}
}

// TestDocLinks checks that every relative link in the README and the docs
// reaches a file of this repository (and, with #fragment, a heading in it),
// and that no document points outside the repository's own tree.
func TestDocLinks(t *testing.T) {
	for _, f := range docFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "../shared") {
			t.Errorf("%s refers to ../shared, which a clone of this repository does not have", f)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			resolved := f
			if path != "" {
				resolved = filepath.Join(filepath.Dir(f), path)
			}
			if rel, err := filepath.Rel(".", resolved); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: link %q leaves the repository", f, target)
				continue
			}
			if _, err := os.Stat(resolved); err != nil {
				t.Errorf("%s: link %q: %v", f, target, err)
				continue
			}
			if frag != "" && strings.HasSuffix(resolved, ".md") && !hasAnchor(t, resolved, frag) {
				t.Errorf("%s: link %q: no heading with anchor #%s in %s", f, target, frag, resolved)
			}
		}
	}
}

func hasAnchor(t *testing.T, file, frag string) bool {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range mdHeading.FindAllStringSubmatch(string(b), -1) {
		if slug(h[1]) == frag {
			return true
		}
	}
	return false
}

// slug is GitHub's heading anchor: lower case, punctuation dropped, spaces
// to hyphens.
func slug(heading string) string {
	s := strings.ToLower(strings.TrimSpace(heading))
	s = slugDrop.ReplaceAllString(s, "")
	return strings.ReplaceAll(s, " ", "-")
}
