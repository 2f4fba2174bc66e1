package scaleout_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/latchhq/latch/cli"
	"github.com/latchhq/latch/latchtest"
	"github.com/latchhq/latch/storage"
	"github.com/latchhq/latch/storage/pgtest"
)

// TestConcurrentMigrateIsSafe starts many migrations of one empty
// PostgreSQL database at once, as N instances started with --migrate
// would: the advisory lock lets one apply the schema and the rest find
// nothing to do.
func TestConcurrentMigrateIsSafe(t *testing.T) {
	dsn := pgtest.DSN(t)
	const n = 8 // fewer rarely collide without the lock; each waiter polls it once a second
	var wg sync.WaitGroup
	versions := make([]int64, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := storage.Open(dsn, storage.Options{})
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			<-start
			versions[i], errs[i] = s.Migrate(context.Background())
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("migration %d of %d concurrent ones failed: %v", i, n, errs[i])
		}
		if versions[i] != versions[0] || versions[i] == 0 {
			t.Fatalf("versions after concurrent migrate: %v", versions)
		}
	}
	s, err := storage.Open(dsn, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CheckSchema(context.Background()); err != nil {
		t.Fatalf("schema after concurrent migrate: %v", err)
	}
}

// run executes the latch command line against env and returns its exit
// code and output.
func run(t *testing.T, environ []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Execute(context.Background(), args, environ, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestServeRefusesSchemaBehind proves the CLI path: on PostgreSQL, serve
// without --migrate refuses an unmigrated database and says what to run;
// `latch migrate` fixes it; `latch janitor` then runs.
func TestServeRefusesSchemaBehind(t *testing.T) {
	environ := []string{
		"LATCH_DATABASE_DSN=" + pgtest.DSN(t),
		"LATCH_MASTER_KEY=" + latchtest.MasterKey,
		"LATCH_HTTP_ADDR=127.0.0.1:0", "LATCH_ISSUER=http://127.0.0.1:1",
		"LATCH_LOG_LEVEL=error",
	}
	code, _, stderr := run(t, environ, "serve")
	if code == 0 || !strings.Contains(stderr, "behind") || !strings.Contains(stderr, "latch migrate") || !strings.Contains(stderr, "--migrate") {
		t.Fatalf("serve on an unmigrated PostgreSQL: exit %d, stderr %q; want a refusal naming `latch migrate`", code, stderr)
	}
	code, _, stderr = run(t, environ, "janitor")
	if code == 0 || !strings.Contains(stderr, "latch migrate") {
		t.Fatalf("janitor on an unmigrated database: exit %d, stderr %q", code, stderr)
	}
	code, stdout, stderr := run(t, environ, "migrate")
	if code != 0 || !strings.Contains(stdout, "database schema at version") {
		t.Fatalf("migrate: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, environ, "janitor")
	if code != 0 || !strings.Contains(stdout, "deleted 0 expired rows") {
		t.Fatalf("janitor: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
