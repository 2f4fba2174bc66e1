package pgtest_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/latchhq/latch/storage/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestDSNGivesSeparateDatabases(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.DSN(t), pgtest.DSN(t)
	if a == b {
		t.Fatalf("two tests share database %s", a)
	}
	conn, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL %s at %s", v, a)
}

// A test's own cluster goes away on Stop and comes back on Start with its
// data and at the same DSN.
func TestOwnClusterStopsAndStarts(t *testing.T) {
	ctx := context.Background()
	cl := pgtest.Own(t)
	dsn := cl.DSN(t)
	run := func(sql string) error {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := run("CREATE TABLE kept (v int); INSERT INTO kept VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	cl.Stop(t)
	if err := run("SELECT 1"); err == nil {
		t.Fatal("a stopped cluster accepted a connection")
	}
	cl.Start(t)
	if err := run("INSERT INTO kept VALUES (2)"); err != nil {
		t.Fatalf("after Start: %v", err)
	}
}
