package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestArchitecture keeps the layering honest: storage knows nothing of HTTP,
// production code never imports testing helpers, every package says what it
// is for.
func TestArchitecture(t *testing.T) {
	const mod = "github.com/latchhq/latch/"
	forbidden := map[string][]string{
		"storage":    {"net/http", "github.com/labstack/echo/v4"},
		"migrations": {"net/http", "github.com/labstack/echo/v4"},
		"keys":       {"net/http", "github.com/labstack/echo/v4"},
		"secret":     {"net/http", "github.com/labstack/echo/v4"},
		"scopes":     {"net/http", "github.com/labstack/echo/v4"},
		"config":     {"net/http", "github.com/labstack/echo/v4"},
		// API keys are made by the CLI and first start as well as checked by
		// the server: the service speaks errors, and the server turns them
		// into HTTP answers.
		"apikeys": {"net/http", "github.com/labstack/echo/v4"},
	}
	// Edges that must not come back, each with its reason. from is a
	// package directory (and everything below it); to is an exact import
	// path, so fosite's token/jwt (signing, not storage outcomes) stays
	// allowed where the root package is not.
	edges := []struct{ from, to, why string }{
		{"clients", mod + "approval", "clients needs only the request decoder, which is apierror's; approval is a sibling service"},
		{"config", mod + "storage", "config is checked before anything opens and must not link database drivers; it reads DSNs with the leaf storage/dsn"},
		{"config", mod + "keys", "config must not link keys' storage; it decodes the master key with the leaf keys/masterkey, as keys does"},
	}
	// leaves import no package of this module, so the light packages that
	// share them (config) stay light.
	leaves := map[string]bool{"storage/dsn": true, "keys/masterkey": true}
	for _, dir := range []string{"clients", "approval", "apikeys", "cimd", "resources", "logout", "keys", "cli"} {
		edges = append(edges, struct{ from, to, why string }{dir, "github.com/ory/fosite",
			"storage outcomes are storage.ErrNotFound/ErrConflict outside the fosite boundary (provider, server, storage)"})
	}
	docs := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		if _, ok := docs[dir]; !ok {
			docs[dir] = false
		}
		if f.Doc != nil && strings.HasPrefix(f.Doc.Text(), "Package "+f.Name.Name) || f.Name.Name == "main" && f.Doc != nil {
			docs[dir] = true
		}
		top := strings.SplitN(dir, "/", 2)[0]
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden[top] {
				if p == bad {
					t.Errorf("%s imports %s: %s must not depend on HTTP", path, p, top)
				}
			}
			if leaves[dir] && strings.HasPrefix(p, mod) {
				t.Errorf("%s imports %s: %s is a leaf shared with config and must import no package of this module", path, p, dir)
			}
			for _, e := range edges {
				if p == e.to && (dir == e.from || strings.HasPrefix(dir, e.from+"/")) {
					t.Errorf("%s imports %s: %s", path, p, e.why)
				}
			}
			isTestHelper := strings.HasSuffix(p, "/latchtest") || strings.Contains(p, "/conformance")
			if (p == "testing" || isTestHelper && strings.HasPrefix(p, mod)) && !testHelperPackage(dir) {
				t.Errorf("%s imports %s: production code must not import test helpers", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir, ok := range docs {
		if !ok {
			t.Errorf("package %s has no doc comment (// Package <name> ...)", dir)
		}
	}
}

// testHelperPackage names the packages that exist only for tests.
func testHelperPackage(dir string) bool {
	return strings.HasPrefix(dir, "latchtest") || strings.Contains(dir, "conformance") || strings.Contains(dir, "pgtest")
}
