package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
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
	}
	for _, dir := range []string{"clients", "approval", "apikeys", "cimd", "resources", "logout", "keys", "cli"} {
		edges = append(edges, struct{ from, to, why string }{dir, "github.com/ory/fosite",
			"storage outcomes are storage.ErrNotFound/ErrConflict outside the fosite boundary (provider, server, storage)"})
	}
	// within lists every package of this module that a package may import,
	// for the packages whose place in the layering is the point; packages
	// not listed import what they need.
	within := map[string][]string{
		// endpoint spells the served paths for the router, discovery, DPoP
		// htu, provider, approval, clients, audit, logout, openapi, the CLI,
		// latchtest and latch-bench: imported by nearly everything, so it
		// imports nothing.
		"endpoint": {},
		// config is read first by every command and checked before anything
		// opens, and holds the ID token algorithms provider re-exports: it
		// must not link database drivers or keys' storage, so it reads DSNs
		// and the master key with two leaves of its own.
		"config": {"storage/dsn", "keys/masterkey"},
		// The leaves config shares with storage and keys: light, so config
		// stays light.
		"storage/dsn":    {},
		"keys/masterkey": {},
		// provider owns the protocol vocabulary that clients' validation,
		// server's discovery and the CLI's help read (grant types, auth
		// methods, algorithms): it takes its token URL from endpoint and
		// its ID token algorithms from config, and never imports the
		// packages that consume its lists.
		"provider": {"config", "endpoint", "outbound", "storage"},
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
			for _, e := range edges {
				if p == e.to && (dir == e.from || strings.HasPrefix(dir, e.from+"/")) {
					t.Errorf("%s imports %s: %s", path, p, e.why)
				}
			}
			if allowed, pinned := within[dir]; pinned && strings.HasPrefix(p, mod) && !slices.Contains(allowed, strings.TrimPrefix(p, mod)) {
				t.Errorf("%s imports %s: %s may import only %v of this module", path, p, dir, allowed)
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
